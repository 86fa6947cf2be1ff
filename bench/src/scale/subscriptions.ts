/**
 * One measurement of the scale suite's subscription rows, in a process of its own
 * (`node --expose-gc subscriptions.ts <pg|redis> <raw|ours> <n>`): one connection subscribed to `n` channels (and, for
 * Redis, `n / 100` patterns), then killed by the server (`pg_terminate_backend`, `CLIENT KILL`). Prints the time to
 * subscribe them all, the time until they are all subscribed again, and the heap the subscriptions hold after a
 * full GC. Both sides reconnect at once (ours with a zero-delay schedule): the rows measure resubscription, not a
 * backoff.
 *
 * - pg: every `LISTEN` in one round trip (what `PgListen` sends); raw `pg` opens a new client and sends the same
 *   statement when its connection ends. Subscribed = the query answered (raw) or `Connected` (ours).
 * - redis: `SUBSCRIBE` and `PSUBSCRIBE` of everything; raw ioredis resubscribes by itself. Subscribed the first
 *   time = the client has every reply (raw: its promises resolved; ours: `Connected`) and the server's `CLIENT LIST`
 *   shows every channel and pattern; again after the kill = the server lists them all again (polled every 5 ms).
 */
import type { Lifecycle } from "@streamemit/core"
import { PgListen } from "@streamemit/pg-listen"
import { RedisPubSub } from "@streamemit/redis-pubsub"
import { Effect, Exit, Schedule, Scope, Stream } from "effect"
import { Redis } from "ioredis"
import pg from "pg"
import { heapUsedAfterGc, sleep } from "./measure.ts"

const [kind, mode, count] = process.argv.slice(2) as ["pg" | "redis", "raw" | "ours", string]
const n = Number(count)
const PG = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const application = `streamemit_scale_${process.pid}`
const channels = Array.from({ length: n }, (_, i) => `scale_${process.pid}_${i}`)
const patterns = kind === "redis" ? Array.from({ length: n / 100 }, (_, i) => `scale_${process.pid}_p${i}_*`) : []

/** Waits until the server lists a client subscribed to every channel and pattern; returns its id. */
const redisSubscribed = async (admin: Redis, notId?: string): Promise<string> => {
  for (;;) {
    const list = (await admin.call("CLIENT", "LIST", "TYPE", "pubsub")) as string
    for (const line of list.split("\n")) {
      const fields = new Map(line.split(" ").map((field) => field.split("=", 2) as [string, string]))
      if (fields.get("sub") === String(channels.length) && fields.get("psub") === String(patterns.length)) {
        const id = fields.get("id")!
        if (id !== notId) return id
      }
    }
    await sleep(5)
  }
}

const pgTerminate = async () => {
  const admin = new pg.Client({ connectionString: PG })
  await admin.connect()
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [application])
  await admin.end()
}

const listenAll = channels.map((channel) => `LISTEN "${channel}"`).join("; ")
const pgUrl = `${PG}${PG.includes("?") ? "&" : "?"}application_name=${application}`

const before = await heapUsedAfterGc()
let subscribeMs: number
let resubscribeMs: number
let heap: number
const admin = kind === "redis" ? new Redis(REDIS) : undefined
if (mode === "ours") {
  const scope = Effect.runSync(Scope.make())
  const connected: Array<number> = []
  let notify: (() => void) | undefined
  const make =
    kind === "pg"
      ? PgListen.make({ connection: pgUrl, channels, reconnect: Schedule.spaced("0 millis") })
      : RedisPubSub.make({ connection: REDIS, channels, patterns, reconnect: Schedule.spaced("0 millis") })
  const started = performance.now()
  const handle = await Effect.runPromise(Scope.provide(make as Effect.Effect<never, never, Scope.Scope>, scope))
  Effect.runFork(
    Stream.runForEach((handle as { events: Stream.Stream<Lifecycle.Event> }).events, (event) =>
      Effect.sync(() => {
        if (event._tag === "Connected") {
          connected.push(performance.now())
          notify?.()
        }
      })
    )
  )
  const connections = (target: number) =>
    new Promise<void>((resolve) => {
      notify = () => connected.length >= target && resolve()
      notify()
    })
  // Subscribed: the server lists every subscription and the handle has taken every reply (`Connected`), as raw
  // ioredis has when its `subscribe` promise resolves.
  await connections(1)
  const id = kind === "redis" ? await redisSubscribed(admin!) : undefined
  subscribeMs = performance.now() - started
  heap = (await heapUsedAfterGc()) - before
  const killed = performance.now()
  if (kind === "pg") {
    await pgTerminate()
    await connections(2)
  } else {
    await admin!.call("CLIENT", "KILL", "ID", id!)
    await redisSubscribed(admin!, id)
  }
  resubscribeMs = performance.now() - killed
  await Effect.runPromise(Scope.close(scope, Exit.void))
} else if (kind === "pg") {
  const open = async () => {
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    await client.query(listenAll)
    return client
  }
  const started = performance.now()
  const first = await open()
  subscribeMs = performance.now() - started
  heap = (await heapUsedAfterGc()) - before
  // What an application does with raw pg: a new client, the same LISTENs, when the connection ends.
  const again = new Promise<pg.Client>((resolve) => {
    first.on("error", () => {})
    first.once("end", () => resolve(open()))
  })
  const killed = performance.now()
  await pgTerminate()
  const second = await again
  resubscribeMs = performance.now() - killed
  await second.end()
} else {
  const client = new Redis(REDIS, { retryStrategy: () => 0 })
  client.on("error", () => {})
  const started = performance.now()
  await client.subscribe(...channels)
  if (patterns.length > 0) await client.psubscribe(...patterns)
  const id = await redisSubscribed(admin!)
  subscribeMs = performance.now() - started
  heap = (await heapUsedAfterGc()) - before
  const killed = performance.now()
  await admin!.call("CLIENT", "KILL", "ID", id)
  await redisSubscribed(admin!, id)
  resubscribeMs = performance.now() - killed
  client.disconnect()
}
admin?.disconnect()
console.log(JSON.stringify({ subscribeMs, resubscribeMs, heapBytes: heap }))
process.exit(0)
