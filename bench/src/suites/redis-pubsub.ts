/**
 * `RedisPubSub.stream` against a raw ioredis subscriber's `messageBuffer` handler, against the local Redis
 * (`REDIS_URL`), with the same producer: pipelines of 1,000 PUBLISH, awaited one after the other. Timed from the
 * producer's start to the last message received. Memory: live heap at the end and peak RSS growth while the producer floods for 3 s
 * and the consumer takes 1 ms per message. Beside them, as context (the peers issue): node-redis's subscriber (the
 * `redis` package) against the same raw baseline, same producer. Added latency at 5,000 messages/s, the peer's too.
 */
import { RedisPubSub } from "@streamemit/redis-pubsub"
import { Effect, Fiber, Stream } from "effect"
import { Redis } from "ioredis"
import { createClient } from "redis"
import {
  atRate,
  compareRates,
  connectorUnderFlood,
  deferred,
  handleLatencyClient,
  type LatencyClient,
  latencyRounds,
  latencyRows,
  memoryRows,
  now,
  peerRow,
  type Row,
  recordUntil,
  type Suite,
  slowArrayConsumer,
  slowConsumerMemory,
  throughputRow
} from "../harness.ts"

const MESSAGES = Number(process.env.BENCH_REDIS_N ?? 200_000)
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const FLOOD_MS = 3000
const LATENCY_MESSAGES = 5000
const LATENCY_ROUNDS = 7

export const suite: Suite = {
  name: "redis-pubsub",
  run: async () => {
    const producer = new Redis(REDIS_URL)
    let round = 0
    let dropped = 0
    const payload = "x".repeat(100)
    const produce = async (channel: string) => {
      for (let sent = 0; sent < MESSAGES; sent += 1000) {
        const pipeline = producer.pipeline()
        for (let i = 0; i < 1000; i++) pipeline.publish(channel, payload)
        await pipeline.exec()
      }
    }
    const rawSubscriber = async () => {
      const channel = `bench:raw:${process.pid}:${++round}`
      const client = new Redis(REDIS_URL)
      await client.subscribe(channel)
      let seen = 0
      const done = new Promise<void>((resolve) =>
        client.on("messageBuffer", () => {
          if (++seen === MESSAGES) resolve()
        })
      )
      const start = performance.now()
      await produce(channel)
      await done
      const seconds = (performance.now() - start) / 1000
      client.disconnect()
      return seconds
    }
    try {
      const rates = await compareRates({
        items: MESSAGES,
        rounds: 5,
        warmup: 1,
        baseline: rawSubscriber,
        subject: () =>
          Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const channel = `bench:se:${process.pid}:${++round}`
                const handle = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel], reconnect: false })
                yield* handle.events.pipe(
                  Stream.takeUntil((e) => e._tag === "Connected"),
                  Stream.runDrain
                )
                const start = performance.now()
                let seen = 0
                const consumed = yield* handle.messages.pipe(
                  Stream.runForEachArray((batch) => Effect.sync(() => (seen += batch.length))),
                  Effect.forkChild({ startImmediately: true })
                )
                yield* Effect.promise(() => produce(channel))
                // Dropped messages (counted) end the wait as well as delivered ones.
                while (seen + (yield* handle.stats).dropped < MESSAGES) yield* Effect.sleep("1 millis")
                const seconds = (performance.now() - start) / 1000
                dropped += (yield* handle.stats).dropped
                yield* Fiber.interrupt(consumed)
                return seconds
              })
            )
          )
      })
      const row: Row = throughputRow(
        "redis-pubsub",
        `${MESSAGES / 1000}k × 100 B PUBLISH: RedisPubSub.stream vs ioredis subscriber (${dropped} dropped)`,
        "messages/s",
        rates
      )
      const rows: Array<Row> = [row]
      // The peer, as context: no target. node-redis's subscriber (given Buffers, as the raw row's messageBuffer).
      const nodeRedis = async () => {
        const channel = `bench:peer:${process.pid}:${++round}`
        const client = createClient({ url: REDIS_URL })
        client.on("error", () => {})
        await client.connect()
        let seen = 0
        let resolveDone: () => void = () => {}
        const done = new Promise<void>((resolve) => {
          resolveDone = resolve
        })
        await client.subscribe(
          channel,
          () => {
            if (++seen === MESSAGES) resolveDone()
          },
          true
        )
        const start = performance.now()
        await produce(channel)
        await done
        const seconds = (performance.now() - start) / 1000
        client.destroy()
        return seconds
      }
      const peerRates = await compareRates({
        items: MESSAGES,
        rounds: 5,
        warmup: 1,
        baseline: rawSubscriber,
        subject: nodeRedis
      })
      rows.push(
        peerRow(
          "redis-pubsub",
          `${MESSAGES / 1000}k × 100 B PUBLISH: peer node-redis subscriber vs ioredis subscriber`,
          "messages/s",
          peerRates
        )
      )
      // Added latency at 5,000 messages/s: each client in turn, on a channel of its own per round.
      let latencyChannel = ""
      const subscribed = (name: string) => (latencyChannel = `bench:latency:${name}:${process.pid}:${++round}`)
      const counted = (record: (sentAt: number) => void, done: () => void) =>
        recordUntil(record, LATENCY_MESSAGES, done)
      const latencyClients: ReadonlyArray<readonly [string, LatencyClient]> = [
        [
          "raw",
          async (record) => {
            const client = new Redis(REDIS_URL)
            const { promise, resolve } = deferred()
            const receive = counted(record, resolve)
            client.on("message", (_channel: string, message: string) => receive(message))
            await client.subscribe(subscribed("raw"))
            return async () => {
              await promise
              client.disconnect()
            }
          }
        ],
        [
          "ours",
          handleLatencyClient(
            () => RedisPubSub.make({ connection: REDIS_URL, channels: [subscribed("ours")], reconnect: false }),
            LATENCY_MESSAGES,
            (message) => Number(message.payload)
          )
        ],
        [
          "node-redis",
          async (record) => {
            const client = createClient({ url: REDIS_URL })
            client.on("error", () => {})
            await client.connect()
            const { promise, resolve } = deferred()
            await client.subscribe(subscribed("node-redis"), counted(record, resolve))
            return async () => {
              await promise
              client.destroy()
            }
          }
        ]
      ]
      rows.push(
        ...latencyRows(
          "redis-pubsub",
          `at 5k msg/s, median of ${LATENCY_ROUNDS} rounds`,
          await latencyRounds(
            latencyClients,
            () => atRate(LATENCY_MESSAGES, 5000, () => producer.publish(latencyChannel, String(now()))),
            LATENCY_ROUNDS
          ),
          { raw: "raw", ours: "ours" }
        )
      )
      // Memory under a 1 ms/message consumer while the producer floods for 3 s.
      const flood = async (channel: string) => {
        let sent = 0
        for (const end = performance.now() + FLOOD_MS; performance.now() < end; sent += 1000) {
          const pipeline = producer.pipeline()
          for (let i = 0; i < 1000; i++) pipeline.publish(channel, payload)
          await pipeline.exec()
        }
        return sent
      }
      const raw = await slowConsumerMemory(async (settled) => {
        const channel = `bench:raw:mem:${process.pid}`
        const client = new Redis(REDIS_URL)
        await client.subscribe(channel)
        const consumer = slowArrayConsumer<Buffer>()
        client.on("messageBuffer", (_channel: Buffer, message: Buffer) => consumer.push(message))
        const sent = await flood(channel)
        settled()
        await consumer.stop()
        client.disconnect()
        return sent
      })
      const ours = await slowConsumerMemory((settled) =>
        connectorUnderFlood(
          RedisPubSub.make({ connection: REDIS_URL, channels: [`bench:se:mem:${process.pid}`], reconnect: false }),
          () => flood(`bench:se:mem:${process.pid}`),
          settled
        )
      )
      const memDropped = ours.result.stats.dropped
      rows.push(
        ...memoryRows(
          "redis-pubsub",
          `1 ms/message consumer, 3 s flood (sent: ours ${(ours.result.sent / 1e3).toFixed(0)}k with ${(memDropped / 1e3).toFixed(0)}k dropped and counted, raw ${(raw.result / 1e3).toFixed(0)}k)`,
          ours,
          raw
        )
      )
      // The peer in the same run: node-redis hands its messages to the same 1 ms/message consumer.
      const peer = await slowConsumerMemory(async (settled) => {
        const channel = `bench:peer:mem:${process.pid}`
        const client = createClient({ url: REDIS_URL })
        client.on("error", () => {})
        await client.connect()
        const consumer = slowArrayConsumer<Buffer>()
        await client.subscribe(channel, consumer.push, true)
        const sent = await flood(channel)
        settled()
        await consumer.stop()
        client.destroy()
        return sent
      })
      rows.push(
        ...memoryRows(
          "redis-pubsub",
          `peer node-redis, same consumer and flood (sent ${(peer.result / 1e3).toFixed(0)}k)`,
          peer,
          raw
        ).map((row) => (row.case.startsWith("peak") ? { ...row, case: "peak RSS growth, peer node-redis" } : row))
      )
      return rows
    } finally {
      producer.disconnect()
    }
  }
}
