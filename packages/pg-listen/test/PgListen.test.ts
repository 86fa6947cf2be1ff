import { assert, describe, it } from "@effect/vitest"
import { type ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, Resources, Wait } from "@streamemit/testkit"
import {
  Config,
  ConfigProvider,
  Deferred,
  Effect,
  Fiber,
  Layer,
  Metric,
  Redacted,
  Schedule,
  Schema,
  Stream
} from "effect"
import pg from "pg"
import { PgListen } from "../src/index.ts"

const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const target = new URL(PG_URL)
const fast = Schedule.spaced("50 millis")
const errorOf = Expect.connectorError

let names = 0
/** Channels and application names of their own for every test: tests run concurrently against one server. */
const unique = (label: string) => `se_${label}_${process.pid}_${++names}`

/** A second connection of the test's own: NOTIFY, pg_stat_activity, pg_terminate_backend. */
const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end())
)

const sessionsOf = (client: pg.Client, application: string) =>
  Effect.promise(() =>
    client.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [application])
  ).pipe(Effect.map((result) => result.rows[0].n as number))

const notifyRange = (client: pg.Client, channel: string, from: number, count: number) =>
  Effect.promise(() =>
    client.query("SELECT pg_notify($1, n::text) FROM generate_series($2::int, $3::int) AS n", [
      channel,
      from,
      from + count - 1
    ])
  )

/** Our client through a fault proxy to the real server. */
const fixture = Effect.gen(function* () {
  const proxy = yield* FaultProxy.make({ target: { host: target.hostname, port: Number(target.port || 5432) } })
  const application = unique("app")
  const channel = unique("ch")
  const url = (database = target.pathname.slice(1)) =>
    `postgres://${target.username || "postgres"}@${proxy.address}/${database}?application_name=${application}`
  return { proxy, application, channel, url, admin: yield* admin }
})

Conformance.run<PgListen.Notification>({
  connector: "pg-listen",
  pausable: { burstAfterPause: 8192 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const { proxy, application, channel, url, admin } = yield* fixture
    return {
      proxy,
      handle: (options) => PgListen.make({ connection: url(), channels: [channel], ...options }),
      nonRetryable: (options) =>
        PgListen.make({ connection: url("no_such_database_streamemit"), channels: [channel], ...options }),
      send: (from, count) => notifyRange(admin, channel, from, count),
      numberOf: (n) => Number(n.payload),
      serverSessions: sessionsOf(admin, application)
    }
  })
})

describe("PgListen as a service", () => {
  it.live("layerConfig: the connection string from configuration (Redacted), the handle shared as a service", () =>
    Effect.gen(function* () {
      const channel = unique("layer")
      const program = Effect.gen(function* () {
        const listener = yield* PgListen.PgListen
        yield* Wait.status(listener, "Connected")
        const received = yield* listener.messages.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
        yield* Effect.sleep("50 millis")
        yield* listener.notify(channel, "from the layer")
        return yield* Fiber.join(received)
      })
      const layer = PgListen.layerConfig({
        connection: Config.Redacted("DATABASE_URL"),
        channels: Config.succeed([channel])
      })
      const out = yield* program.pipe(
        Effect.provide(layer),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ DATABASE_URL: PG_URL })))
      )
      assert.deepStrictEqual(
        out.map((n) => n.payload),
        ["from the layer"]
      )
    })
  )

  it.live("a Redacted connection string works, and never appears in an error", () =>
    Effect.gen(function* () {
      const bad = Redacted.make("postgresql://app:s3cret@127.0.0.1:1/db?application_name=x")
      const handle = yield* PgListen.make({ connection: bad, channels: ["c"], reconnect: false })
      const error = errorOf(yield* handle.messages.pipe(Stream.runDrain, Effect.exit))
      assert.notInclude(error.message, "s3cret")
      const missing = yield* Effect.flip(
        Effect.provide(
          Layer.build(PgListen.layerConfig({ connection: Config.Redacted("NOPE"), channels: Config.succeed(["c"]) })),
          ConfigProvider.layer(ConfigProvider.fromUnknown({}))
        )
      )
      assert.include(String(missing), "NOPE")
    }).pipe(Effect.scoped)
  )
})

describe("PgListen channels and payloads", () => {
  it.live("any channel name works and none injects SQL; too long, empty or NUL names are Config errors", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channels = [
        `quote"d ${names}`,
        `with spaces ${names}`,
        `ünïcødé ✓ ${names}`,
        `x"; DROP TABLE pg_class; -- ${names}`,
        `UPPER lower ${names}`
      ]
      const handle = yield* PgListen.make({ connection: PG_URL, channels })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(channels.length), Stream.runCollect, Effect.forkChild)
      for (const channel of channels) {
        yield* Effect.promise(() => client.query("SELECT pg_notify($1, $2)", [channel, channel]))
      }
      const got = yield* Fiber.join(received)
      assert.deepStrictEqual(
        got.map((n) => n.channel),
        channels
      )
      assert.deepStrictEqual(
        got.map((n) => n.payload),
        channels
      )
      for (const bad of ["", "a\0b", "x".repeat(64), "é".repeat(32)]) {
        const error = errorOf(
          yield* PgListen.stream({ connection: PG_URL, channels: [bad] }).pipe(Stream.runDrain, Effect.exit)
        )
        assert.strictEqual(error.reason._tag, "Config")
        assert.strictEqual((error.reason as ConnectorError.Config).option, "channels")
      }
    }).pipe(Effect.scoped)
  )

  it.live("empty and unicode payloads are delivered; the processId is the sender's", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channel = unique("payloads")
      const handle = yield* PgListen.make({ connection: PG_URL, channels: [channel] })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      // Separate statements: the server folds identical notifications within one transaction.
      yield* Effect.promise(() => client.query(`NOTIFY "${channel}"`))
      yield* Effect.promise(() => client.query("SELECT pg_notify($1, '')", [channel]))
      yield* Effect.promise(() => client.query("SELECT pg_notify($1, $2)", [channel, "𝄞 naïve 日本"]))
      const got = yield* Fiber.join(received)
      assert.deepStrictEqual(
        got.map((n) => n.payload),
        ["", "", "𝄞 naïve 日本"]
      )
      const pid = (yield* Effect.promise(() => client.query("SELECT pg_backend_pid() AS pid"))).rows[0].pid
      assert.isTrue(got.every((n) => n.processId === pid))
    }).pipe(Effect.scoped)
  )

  it.live("notify: delivered; over 7999 bytes a typed error before sending; disconnected a Closed error", () =>
    Effect.gen(function* () {
      const { proxy, channel, url } = yield* fixture
      const handle = yield* PgListen.make({ connection: url(), channels: [channel], reconnect: fast })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* handle.notify(channel, "self")
      assert.deepStrictEqual(
        (yield* Fiber.join(received)).map((n) => n.payload),
        ["self"]
      )
      const big = errorOf(yield* Effect.exit(handle.notify(channel, "x".repeat(8000))))
      assert.strictEqual(big.reason._tag, "Protocol")
      assert.include(big.message, "8000 bytes")
      const badChannel = errorOf(yield* Effect.exit(handle.notify("", "x")))
      assert.strictEqual(badChannel.reason._tag, "Config")
      yield* proxy.refuse
      yield* proxy.reset
      yield* Wait.until(() => Effect.runPromise(Effect.map(handle.status, (s) => s._tag !== "Connected")), "down")
      const down = errorOf(yield* Effect.exit(handle.notify(channel, "x")))
      assert.strictEqual(down.reason._tag, "Closed")
    }).pipe(Effect.scoped)
  )

  it.live("listen and unlisten on a live handle; added channels survive a reconnect", () =>
    Effect.gen(function* () {
      const { proxy, channel, url, admin: client } = yield* fixture
      const extra = unique("extra")
      const handle = yield* PgListen.make({ connection: url(), channels: [channel], reconnect: fast })
      yield* Wait.status(handle, "Connected")
      const seen: Array<string> = []
      yield* handle.messages.pipe(
        Stream.runForEach((n) => Effect.sync(() => seen.push(`${n.channel}:${n.payload}`))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* handle.listen(extra)
      yield* Effect.promise(() => client.query("SELECT pg_notify($1, '1')", [extra]))
      yield* Wait.until(() => seen.includes(`${extra}:1`), "a notification on the added channel")
      yield* handle.unlisten(channel)
      assert.deepStrictEqual(yield* handle.channels, [extra])
      yield* proxy.reset
      // The reconnect itself, not a Connecting state that may last only milliseconds.
      yield* Wait.until(() => Effect.runPromise(Effect.map(handle.stats, (s) => s.reconnects >= 1)), "a reconnect")
      yield* Wait.status(handle, "Connected")
      yield* Effect.promise(() => client.query("SELECT pg_notify($1, 'gone'), pg_notify($2, '2')", [channel, extra]))
      yield* Wait.until(() => seen.includes(`${extra}:2`), "the added channel after a reconnect")
      assert.notInclude(seen, `${channel}:gone`)
    }).pipe(Effect.scoped)
  )

  it.live('a Schema decodes JSON payloads: "fail" names the channel; "skip" counts', () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channel = unique("json")
      const schema = Schema.Struct({ n: Schema.Number })
      const name = unique("skip")
      const handle = yield* PgListen.make({
        connection: PG_URL,
        channels: [channel],
        schema,
        onDecodeError: "skip",
        name
      })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      for (const payload of ['{"n":1}', "{oops", '{"n":"x"}', '{"n":4}']) {
        yield* Effect.promise(() => client.query("SELECT pg_notify($1, $2)", [channel, payload]))
      }
      assert.deepStrictEqual(
        (yield* Fiber.join(received)).map((n) => n.payload.n),
        [1, 4]
      )
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("pg-listen", name).decodeSkipped)).count, 2)

      const failing = yield* PgListen.make({ connection: PG_URL, channels: [channel], schema })
      yield* Wait.status(failing, "Connected")
      const exit = yield* failing.messages.pipe(Stream.runDrain, Effect.exit, Effect.forkChild)
      yield* Effect.promise(() => client.query("SELECT pg_notify($1, 'nope')", [channel]))
      const error = errorOf(yield* Fiber.join(exit))
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, `channel "${channel}"`)
    }).pipe(Effect.scoped)
  )
})

describe("PgListen backpressure", () => {
  it.live("a burst of 100k notifications in one transaction reaches a consumer that keeps up, none dropped", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channel = unique("burst")
      const handle = yield* PgListen.make({ connection: PG_URL, channels: [channel] })
      yield* Wait.status(handle, "Connected")
      let last = 0
      let ordered = true
      const consumer = yield* handle.messages.pipe(
        Stream.take(100_000),
        Stream.runForEach((n) =>
          Effect.sync(() => {
            ordered &&= Number(n.payload) === last + 1
            last = Number(n.payload)
          })
        ),
        Effect.forkChild({ startImmediately: true })
      )
      yield* notifyRange(client, channel, 1, 100_000)
      yield* Fiber.join(consumer)
      assert.strictEqual(last, 100_000)
      assert.isTrue(ordered)
      assert.strictEqual((yield* handle.stats).dropped, 0)
    }).pipe(Effect.scoped)
  )
})

describe("PgListen faults", () => {
  it.live("pg_terminate_backend: LISTEN again, then Gap, then onResync's items, then live — no duplicates", () =>
    Effect.gen(function* () {
      const { channel, url, application, admin: client } = yield* fixture
      const handle = yield* PgListen.make({
        connection: url(),
        channels: [channel],
        reconnect: fast,
        onResync: (info) => Effect.succeed([{ channel, payload: `resync-${info.attempt}`, processId: 0 }])
      })
      const signals: Array<Lifecycle.Signal<PgListen.Notification>> = []
      yield* handle.signals.pipe(
        Stream.runForEach((s) => Effect.sync(() => signals.push(s))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.status(handle, "Connected")
      yield* notifyRange(client, channel, 1, 3)
      yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 3, "3 notifications")
      const killed = yield* Effect.promise(() =>
        client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [
          application
        ])
      )
      assert.strictEqual(killed.rowCount, 1)
      yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap")
      yield* notifyRange(client, channel, 4, 3)
      yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 7, "resync + 3 more")
      const tags = signals.map((s) => (s._tag === "Message" ? `m:${s.message.payload}` : s._tag))
      const gap = tags.indexOf("Gap")
      assert.deepStrictEqual(tags.slice(gap - 1, gap + 5), ["Connected", "Gap", "m:resync-2", "m:4", "m:5", "m:6"])
      assert.deepStrictEqual(tags.slice(0, 5), ["Connecting", "Connected", "m:1", "m:2", "m:3"])
      assert.strictEqual((signals[gap] as Lifecycle.Gap).delivery, "possible-loss")
      const disconnected = signals.find((s): s is Lifecycle.Disconnected => s._tag === "Disconnected")
      assert.include(disconnected?.error.message, "57P01")
    }).pipe(Effect.scoped)
  )

  it.live("30,000 NOTIFYs during a slow onResync, then 30,000 replayed rows: all delivered, in order, none lost", () =>
    Effect.gen(function* () {
      const { channel, application, url, admin: client } = yield* fixture
      const release = yield* Deferred.make<void>()
      let resyncing = false
      const rows = Array.from({ length: 30_000 }, (_, i) => ({ channel, payload: `row-${i}`, processId: 0 }))
      const handle = yield* PgListen.make({
        connection: url(),
        channels: [channel],
        reconnect: fast,
        overflow: { bufferSize: 1024 },
        onResync: () =>
          Effect.sync(() => {
            resyncing = true
          }).pipe(Effect.andThen(Deferred.await(release)), Effect.as(rows))
      })
      yield* Wait.status(handle, "Connected")
      yield* Effect.promise(() =>
        client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [
          application
        ])
      )
      yield* Wait.until(() => resyncing, "the resync running")
      // Live traffic while the outbox is read: far past the buffer (1,024) and its hard cap (4,096).
      yield* notifyRange(client, channel, 1, 30_000)
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* handle.status)._tag, "Connected", "no Overflow: the held socket is paused")
      assert.isAbove((yield* handle.stats).pauses, 0)
      yield* Deferred.succeed(release, undefined)
      const all = yield* handle.messages.pipe(Stream.take(60_000), Stream.runCollect)
      assert.deepStrictEqual(
        all.slice(0, 30_000).map((n) => n.payload),
        rows.map((r) => r.payload)
      )
      assert.deepStrictEqual(
        all.slice(30_000).map((n) => Number(n.payload)),
        Array.from({ length: 30_000 }, (_, i) => i + 1)
      )
      const stats = yield* handle.stats
      assert.strictEqual(stats.dropped, 0)
      assert.strictEqual(stats.reconnects, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a black hole is detected by the SELECT 1 probe within interval + timeout", () =>
    Effect.gen(function* () {
      const { proxy, channel, url } = yield* fixture
      const handle = yield* PgListen.make({
        connection: url(),
        channels: [channel],
        reconnect: fast,
        liveness: { interval: "200 millis", timeout: "200 millis" }
      })
      // interval + timeout, plus scheduling slack on a loaded machine.
      yield* Expect.blackholeDetected(handle, proxy, { quietFor: "600 millis", withinMillis: 200 + 200 + 50 + 500 })
    }).pipe(Effect.scoped)
  )

  it.live("bad connection strings and unknown databases fail at once, without a retry loop", () =>
    Effect.gen(function* () {
      for (const connection of ["not a url", "mysql://root@127.0.0.1/test", 42 as never]) {
        const error = errorOf(
          yield* PgListen.stream({ connection, channels: ["a"] }).pipe(Stream.runDrain, Effect.exit)
        )
        assert.strictEqual(error.reason._tag, "Config")
        assert.strictEqual((error.reason as ConnectorError.Config).option, "connection")
      }
      const { proxy, url } = yield* fixture
      const unknown = errorOf(
        yield* PgListen.stream({ connection: url("no_such_db_streamemit"), channels: ["a"], reconnect: fast }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual(unknown.reason._tag, "Config")
      assert.include(unknown.message, "3D000")
      assert.strictEqual((yield* proxy.stats).accepted, 1)
      const secret = errorOf(
        yield* PgListen.stream({ connection: "postgres://u:hunter2@[bad", channels: ["a"] }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.notInclude(secret.message, "hunter2")
    }).pipe(Effect.scoped)
  )

  it.live("200 open/close cycles leave no session on the server and nothing in the process", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const application = unique("cycles")
      const channel = unique("cycles")
      const connection = `${PG_URL}${PG_URL.includes("?") ? "&" : "?"}application_name=${application}`
      const baseline = Resources.snapshot()
      for (let i = 0; i < 200; i++) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* PgListen.make({ connection, channels: [channel] })
            yield* Wait.status(handle, "Connected")
          })
        )
      }
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(sessionsOf(client, application), (n) => n === 0)),
        "no session of ours in pg_stat_activity"
      )
      yield* Resources.expectNoLeaks(baseline)
    }).pipe(Effect.scoped)
  )
})
