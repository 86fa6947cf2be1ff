import { CheckpointStore } from "@streamemit/testkit"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { RedisStreams } from "../src/index.ts"
import { REDIS_URL, unique } from "./fixtures.ts"

// One hash for this file's keys, deleted at the end.
const hash = unique("checkpoints")

CheckpointStore.run({
  name: "redis hash",
  layer: RedisStreams.checkpointStore({ connection: REDIS_URL, hash }),
  key: (label) => unique(`ckpt-${label}`),
  corrupt: (key) =>
    Effect.promise(async () => {
      const client = new Redis(REDIS_URL)
      await client.hset(hash, key, '{"cursor": 7}')
      await client.expire(hash, 60)
      client.disconnect()
    })
})
