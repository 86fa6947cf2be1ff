/**
 * `PgListen.stream` against a raw `pg` client's `notification` handler, against the local Postgres (`PG_URL`),
 * with the same producer: one `SELECT pg_notify(…) FROM generate_series(…)` transaction per round. Timed from the
 * producer's start to the last notification received. Memory: live heap at the end and peak RSS growth while the producer floods for
 * 3 s and the consumer takes 1 ms per notification. Beside them, as context (the peers issue): the clients people pick
 * instead — the `pg-listen` package, postgres.js's `listen`, and `@effect/sql-pg`'s `PgClient.listen` — against the
 * same raw baseline, same producer. Added latency at 1,000 notifications/s, the peers' too.
 */
import { PgClient } from "@effect/sql-pg"
import { PgListen } from "@streamemit/pg-listen"
import { Effect, Fiber, Redacted, Stream } from "effect"
import pg from "pg"
import PgListenPeer from "pg-listen"
import postgres from "postgres"
import {
  atRate,
  compareRates,
  connectorUnderFlood,
  countTo,
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

// CommonJS: the default import is the function itself (its types describe the module).
const createSubscriber = PgListenPeer as unknown as typeof PgListenPeer.default

const NOTIFICATIONS = Number(process.env.BENCH_PG_N ?? 100_000)
const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const FLOOD_MS = 3000
const PAYLOAD = "x".repeat(100)
const LATENCY_NOTIFICATIONS = 1000
const LATENCY_ROUNDS = 7

export const suite: Suite = {
  name: "pg-listen",
  run: async () => {
    const producer = new pg.Client({ connectionString: PG_URL })
    await producer.connect()
    let round = 0
    const produce = (channel: string) =>
      producer.query("SELECT pg_notify($1, n::text) FROM generate_series(1, $2::int) AS n", [channel, NOTIFICATIONS])
    const rawListener = async () => {
      const channel = `bench_raw_${process.pid}_${++round}`
      const client = new pg.Client({ connectionString: PG_URL })
      await client.connect()
      await client.query(`LISTEN "${channel}"`)
      let seen = 0
      const done = new Promise<void>((resolve) =>
        client.on("notification", () => {
          if (++seen === NOTIFICATIONS) resolve()
        })
      )
      const start = performance.now()
      await produce(channel)
      await done
      const seconds = (performance.now() - start) / 1000
      await client.end()
      return seconds
    }
    try {
      const rates = await compareRates({
        items: NOTIFICATIONS,
        rounds: 15,
        warmup: 1,
        baseline: rawListener,
        subject: () =>
          Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const channel = `bench_se_${process.pid}_${++round}`
                const handle = yield* PgListen.make({ connection: PG_URL, channels: [channel], reconnect: false })
                yield* handle.events.pipe(
                  Stream.takeUntil((e) => e._tag === "Connected"),
                  Stream.runDrain,
                  Effect.timeout("5 seconds"),
                  Effect.ignore
                )
                const start = performance.now()
                const consumed = yield* countTo(handle.messages, NOTIFICATIONS).pipe(
                  Effect.forkChild({ startImmediately: true })
                )
                yield* Effect.promise(() => produce(channel))
                return ((yield* Fiber.join(consumed)) - start) / 1000
              })
            )
          )
      })
      const row: Row = throughputRow(
        "pg-listen",
        `${NOTIFICATIONS / 1000}k NOTIFY in one transaction: PgListen.stream vs pg "notification" handler`,
        "notifications/s",
        rates
      )
      const rows: Array<Row> = [row]
      // The peers, as context: no target. Each listens, then the same producer runs; timed from its start to the
      // last notification, as the rows above.
      const timed = async (channel: string, done: Promise<void>) => {
        const start = performance.now()
        await produce(channel)
        await done
        return (performance.now() - start) / 1000
      }
      const peers: ReadonlyArray<[string, () => Promise<number>]> = [
        [
          "pg-listen (parse: identity)",
          async () => {
            const channel = `bench_peer_${process.pid}_${++round}`
            // Payloads as strings, as every other row gets them (its default parses JSON).
            const subscriber = createSubscriber({ connectionString: PG_URL }, { parse: (text: string) => text })
            let seen = 0
            const done = new Promise<void>((resolve) =>
              subscriber.notifications.on(channel, () => {
                if (++seen === NOTIFICATIONS) resolve()
              })
            )
            await subscriber.connect()
            await subscriber.listenTo(channel)
            const seconds = await timed(channel, done)
            await subscriber.close()
            return seconds
          }
        ],
        [
          "postgres.js listen",
          async () => {
            const channel = `bench_peer_${process.pid}_${++round}`
            const sql = postgres(PG_URL, { max: 1, onnotice: () => {} })
            let seen = 0
            let resolveDone: () => void = () => {}
            const done = new Promise<void>((resolve) => {
              resolveDone = resolve
            })
            await sql.listen(channel, () => {
              if (++seen === NOTIFICATIONS) resolveDone()
            })
            const seconds = await timed(channel, done)
            await sql.end()
            return seconds
          }
        ],
        [
          "@effect/sql-pg PgClient.listen",
          () =>
            Effect.runPromise(
              Effect.scoped(
                Effect.gen(function* () {
                  const channel = `bench_peer_${process.pid}_${++round}`
                  const client = yield* PgClient.PgClient
                  const queue = yield* client.listen(channel)
                  const start = performance.now()
                  const consumed = yield* countTo(Stream.fromQueue(queue), NOTIFICATIONS).pipe(
                    Effect.forkChild({ startImmediately: true })
                  )
                  yield* Effect.promise(() => produce(channel))
                  return ((yield* Fiber.join(consumed)) - start) / 1000
                })
              ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 2 })))
            )
        ]
      ]
      for (const [name, subject] of peers) {
        const peerRates = await compareRates({
          items: NOTIFICATIONS,
          rounds: 7,
          warmup: 1,
          baseline: rawListener,
          subject
        })
        rows.push(
          peerRow(
            "pg-listen",
            `${NOTIFICATIONS / 1000}k NOTIFY in one transaction: peer ${name} vs pg "notification" handler`,
            "notifications/s",
            peerRates
          )
        )
      }
      // Memory under a 1 ms/notification consumer while the producer floods for 3 s, 10k NOTIFY per transaction.
      const flood = async (channel: string) => {
        let sent = 0
        for (const end = performance.now() + FLOOD_MS; performance.now() < end; sent += 10_000) {
          // Distinct payloads: Postgres folds identical notifications of one transaction into one.
          await producer.query("SELECT pg_notify($1, $2 || n::text) FROM generate_series(1, 10000) AS n", [
            channel,
            PAYLOAD
          ])
        }
        return sent
      }
      const raw = await slowConsumerMemory(async (settled) => {
        const channel = `bench_raw_mem_${process.pid}`
        const client = new pg.Client({ connectionString: PG_URL })
        await client.connect()
        await client.query(`LISTEN "${channel}"`)
        const consumer = slowArrayConsumer<pg.Notification>()
        client.on("notification", consumer.push)
        const sent = await flood(channel)
        settled()
        await consumer.stop()
        await client.end()
        return sent
      })
      const ours = await slowConsumerMemory((settled) =>
        connectorUnderFlood(
          PgListen.make({ connection: PG_URL, channels: [`bench_se_mem_${process.pid}`], reconnect: false }),
          () => flood(`bench_se_mem_${process.pid}`),
          settled
        )
      )
      rows.push(
        ...memoryRows(
          "pg-listen",
          `1 ms/notification consumer, 3 s flood (sent: ours ${(ours.result.sent / 1e3).toFixed(0)}k, raw ${(raw.result / 1e3).toFixed(0)}k)`,
          ours,
          raw
        )
      )
      // The peers in the same run: each hands its notifications to the same 1 ms/notification consumer.
      const peerMemory: ReadonlyArray<
        [string, (channel: string, push: (item: unknown) => void) => Promise<() => Promise<void>>]
      > = [
        [
          "pg-listen",
          async (channel, push) => {
            const subscriber = createSubscriber({ connectionString: PG_URL }, { parse: (text: string) => text })
            subscriber.notifications.on(channel, push)
            await subscriber.connect()
            await subscriber.listenTo(channel)
            return () => subscriber.close()
          }
        ],
        [
          "postgres.js",
          async (channel, push) => {
            const sql = postgres(PG_URL, { max: 1, onnotice: () => {} })
            await sql.listen(channel, push)
            return () => sql.end()
          }
        ],
        [
          "@effect/sql-pg PgClient.listen",
          // A stream read at the consumer's pace: its queue is where the notifications wait.
          async (channel) => {
            let listening: () => void = () => {}
            const listened = new Promise<void>((resolve) => {
              listening = resolve
            })
            const fiber = Effect.runFork(
              Effect.scoped(
                Effect.gen(function* () {
                  const client = yield* PgClient.PgClient
                  const queue = yield* client.listen(channel)
                  listening()
                  yield* Stream.fromQueue(queue).pipe(Stream.runForEach(() => Effect.sleep("1 millis")))
                })
              ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 2 })))
            )
            await listened
            return () => Effect.runPromise(Fiber.interrupt(fiber))
          }
        ]
      ]
      for (const [name, listen] of peerMemory) {
        const peer = await slowConsumerMemory(async (settled) => {
          const channel = `bench_peer_mem_${process.pid}`
          const consumer = slowArrayConsumer<unknown>()
          const close = await listen(channel, consumer.push)
          const sent = await flood(channel)
          settled()
          await consumer.stop()
          await close()
          return sent
        })
        rows.push(
          ...memoryRows(
            "pg-listen",
            `peer ${name}, same consumer and flood (sent ${(peer.result / 1e3).toFixed(0)}k)`,
            peer,
            raw
          ).map((row) =>
            row.metric === "memory" && row.case.startsWith("peak")
              ? { ...row, case: `peak RSS growth, peer ${name}` }
              : row
          )
        )
      }
      // Added latency at 1,000 notifications/s (one NOTIFY each, one at a time): each client in turn, on a channel of
      // its own per round.
      let latencyChannel = ""
      const channelFor = (name: string) => (latencyChannel = `bench_latency_${name}_${process.pid}_${++round}`)
      const counted = (record: (sentAt: number) => void, done: () => void) =>
        recordUntil(record, LATENCY_NOTIFICATIONS, done)
      const latencyClients: ReadonlyArray<readonly [string, LatencyClient]> = [
        [
          "raw",
          async (record) => {
            const client = new pg.Client({ connectionString: PG_URL })
            await client.connect()
            const { promise, resolve } = deferred()
            const receive = counted(record, resolve)
            client.on("notification", (n) => receive(n.payload))
            await client.query(`LISTEN "${channelFor("raw")}"`)
            return async () => {
              await promise
              await client.end()
            }
          }
        ],
        [
          "ours",
          handleLatencyClient(
            () => PgListen.make({ connection: PG_URL, channels: [channelFor("ours")], reconnect: false }),
            LATENCY_NOTIFICATIONS,
            (notification) => Number(notification.payload)
          )
        ],
        [
          "pg-listen",
          async (record) => {
            const subscriber = createSubscriber({ connectionString: PG_URL }, { parse: (text: string) => text })
            const { promise, resolve } = deferred()
            const channel = channelFor("pglisten")
            subscriber.notifications.on(channel, counted(record, resolve))
            await subscriber.connect()
            await subscriber.listenTo(channel)
            return async () => {
              await promise
              await subscriber.close()
            }
          }
        ],
        [
          "postgres.js",
          async (record) => {
            const sql = postgres(PG_URL, { max: 1, onnotice: () => {} })
            const { promise, resolve } = deferred()
            await sql.listen(channelFor("postgresjs"), counted(record, resolve))
            return async () => {
              await promise
              await sql.end()
            }
          }
        ],
        [
          "@effect/sql-pg PgClient.listen",
          async (record) => {
            const listening = deferred()
            const channel = channelFor("sqlpg")
            const fiber = Effect.runFork(
              Effect.scoped(
                Effect.gen(function* () {
                  const client = yield* PgClient.PgClient
                  const queue = yield* client.listen(channel)
                  listening.resolve()
                  yield* Stream.fromQueue(queue).pipe(
                    Stream.take(LATENCY_NOTIFICATIONS),
                    Stream.runForEach((notification) => Effect.sync(() => record(Number(notification.payload))))
                  )
                })
              ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 2 })))
            )
            await listening.promise
            return () => Effect.runPromise(Fiber.join(fiber)).then(() => {})
          }
        ]
      ]
      rows.push(
        ...latencyRows(
          "pg-listen",
          `at 1k notifications/s, median of ${LATENCY_ROUNDS} rounds`,
          await latencyRounds(
            latencyClients,
            async () => {
              let previous: Promise<unknown> = Promise.resolve()
              await atRate(LATENCY_NOTIFICATIONS, 1000, () => {
                // The timestamp is taken as the NOTIFY leaves, after the one before it.
                previous = previous.then(() =>
                  producer.query("SELECT pg_notify($1, $2)", [latencyChannel, String(now())])
                )
              })
              await previous
            },
            LATENCY_ROUNDS
          ),
          { raw: "raw", ours: "ours" }
        )
      )
      return rows
    } finally {
      await producer.end()
    }
  }
}
