import { assert, describe, it } from "@effect/vitest"
import { type ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, Resources, Wait } from "@streamemit/testkit"
import { Config, ConfigProvider, Deferred, Effect, Fiber, Metric, Redacted, Schedule, Schema, Stream } from "effect"
import { Redis } from "ioredis"
import { RedisPubSub } from "../src/index.ts"

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const target = new URL(REDIS_URL)
const fast = Schedule.spaced("50 millis")
const errorOf = Expect.connectorError

let names = 0
/** Channels and client names of their own for every test: tests run concurrently against one server. */
const unique = (label: string) => `se:${label}:${process.pid}:${++names}`

/** A connection of the test's own: PUBLISH, CLIENT LIST, CLIENT KILL. */
const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.quit())
)

/** Connections named `name` in CLIENT LIST. */
const clientsNamed = (client: Redis, name: string) =>
  Effect.promise(() => client.client("LIST") as Promise<string>).pipe(
    Effect.map((list) => list.split("\n").filter((line) => line.includes(` name=${name} `)))
  )

/** CLIENT KILL ID for every connection named `name`; how many were killed. */
const killClients = (client: Redis, name: string) =>
  Effect.flatMap(clientsNamed(client, name), (lines) =>
    Effect.forEach(lines, (line) =>
      Effect.promise(() => client.call("CLIENT", "KILL", "ID", /\bid=(\d+)/.exec(line)![1]!) as Promise<unknown>)
    ).pipe(Effect.as(lines.length))
  )

const publishRange = (client: Redis, channel: string, from: number, count: number) =>
  Effect.promise(() => {
    const pipeline = client.pipeline()
    for (let i = 0; i < count; i++) pipeline.publish(channel, String(from + i))
    return pipeline.exec()
  })

const fixture = Effect.gen(function* () {
  const proxy = yield* FaultProxy.make({ target: { host: target.hostname, port: Number(target.port || 6379) } })
  const connectionName = unique("client").replaceAll(":", "-")
  const channel = unique("ch")
  const connection = { host: proxy.host, port: proxy.port, connectionName }
  return { proxy, connectionName, channel, connection, admin: yield* admin }
})

Conformance.run<RedisPubSub.Message>({
  connector: "redis-pubsub",
  pausable: false,
  reconnects: true,
  fixture: Effect.gen(function* () {
    const { proxy, connectionName, channel, connection, admin } = yield* fixture
    return {
      proxy,
      handle: (options) => RedisPubSub.make({ connection, channels: [channel], ...options }),
      nonRetryable: (options) =>
        RedisPubSub.make({
          connection: { ...connection, username: "streamemit-nobody", password: "wrong-password" },
          channels: [channel],
          ...options
        }),
      send: (from, count) => publishRange(admin, channel, from, count),
      numberOf: (m) => Number(m.payload),
      serverSessions: Effect.map(clientsNamed(admin, connectionName), (lines) => lines.length)
    }
  })
})

describe("RedisPubSub messages", () => {
  it.live("channels and patterns; binary, unicode and empty payloads", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channel = unique("text")
      const prefix = unique("p")
      const handle = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel], patterns: [`${prefix}.*`] })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(4), Stream.runCollect, Effect.forkChild)
      for (const [to, payload] of [
        [channel, ""],
        [channel, "𝄞 naïve 日本"],
        [`${prefix}.a`, "by pattern"],
        [channel, "last"]
      ] as const) {
        yield* Effect.promise(() => client.publish(to, payload))
      }
      assert.deepStrictEqual(yield* Fiber.join(received), [
        { channel, pattern: undefined, payload: "" },
        { channel, pattern: undefined, payload: "𝄞 naïve 日本" },
        { channel: `${prefix}.a`, pattern: `${prefix}.*`, payload: "by pattern" },
        { channel, pattern: undefined, payload: "last" }
      ])

      const bytes = Buffer.from([0, 255, 1, 0xc3, 0x28, 10, 13])
      const binary = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel], binary: true })
      yield* Wait.status(binary, "Connected")
      const raw = yield* binary.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* Effect.promise(() => client.publish(channel, bytes))
      yield* Effect.promise(() => client.publish(channel, Buffer.alloc(0)))
      const [first, second] = yield* Fiber.join(raw)
      assert.deepStrictEqual([...first!.payload], [...bytes])
      assert.strictEqual(second!.payload.byteLength, 0)
    }).pipe(Effect.scoped)
  )

  it.live("publish and live subscribe/unsubscribe/psubscribe on the handle", () =>
    Effect.gen(function* () {
      const channel = unique("live")
      const other = unique("other")
      const handle = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel] })
      yield* Wait.status(handle, "Connected")
      const seen: Array<string> = []
      yield* handle.messages.pipe(
        Stream.runForEach((m) => Effect.sync(() => seen.push(`${m.channel}:${m.payload}`))),
        Effect.forkChild({ startImmediately: true })
      )
      assert.strictEqual(yield* handle.publish(channel, "1"), 1)
      yield* handle.subscribe(other)
      yield* handle.publish(other, "2")
      yield* Wait.until(() => seen.includes(`${other}:2`), "a message on the added channel")
      yield* handle.unsubscribe(channel)
      assert.strictEqual(yield* handle.publish(channel, "gone"), 0)
      yield* handle.psubscribe(`${other}*`)
      yield* handle.publish(`${other}x`, "3")
      yield* Wait.until(() => seen.includes(`${other}x:3`), "a message by the added pattern")
      assert.deepStrictEqual(yield* handle.subscriptions, { channels: [other], patterns: [`${other}*`] })
      assert.notInclude(seen, `${channel}:gone`)
      const bad = errorOf(yield* Effect.exit(handle.publish("", "x")))
      assert.strictEqual(bad.reason._tag, "Config")
    }).pipe(Effect.scoped)
  )

  it.live("sharded pub/sub (SSUBSCRIBE / SPUBLISH) on a standalone server", () =>
    Effect.gen(function* () {
      const channel = unique("sharded")
      const handle = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel], sharded: true })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* handle.publish(channel, "a")
      yield* handle.publish(channel, "b")
      assert.deepStrictEqual(
        (yield* Fiber.join(received)).map((m) => m.payload),
        ["a", "b"]
      )
      const error = errorOf(
        yield* RedisPubSub.stream({ connection: REDIS_URL, patterns: ["x*"], sharded: true }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual((error.reason as ConnectorError.Config).option, "patterns")
    }).pipe(Effect.scoped)
  )

  it.live('a Schema decodes JSON payloads: "skip" counts, "fail" names the channel', () =>
    Effect.gen(function* () {
      const client = yield* admin
      const channel = unique("json")
      const schema = Schema.Struct({ n: Schema.Number })
      const name = unique("skip")
      const handle = yield* RedisPubSub.make({
        connection: REDIS_URL,
        channels: [channel],
        schema,
        onDecodeError: "skip",
        name
      })
      const failing = yield* RedisPubSub.make({ connection: REDIS_URL, channels: [channel], schema })
      yield* Wait.status(handle, "Connected")
      yield* Wait.status(failing, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      const failed = yield* failing.messages.pipe(Stream.runDrain, Effect.exit, Effect.forkChild)
      for (const payload of ['{"n":1}', "{oops", '{"n":"x"}', '{"n":4}']) {
        yield* Effect.promise(() => client.publish(channel, payload))
      }
      assert.deepStrictEqual(
        (yield* Fiber.join(received)).map((m) => m.payload.n),
        [1, 4]
      )
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("redis-pubsub", name).decodeSkipped)).count, 2)
      const error = errorOf(yield* Fiber.join(failed))
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, `channel "${channel}"`)
    }).pipe(Effect.scoped)
  )
})

describe("RedisPubSub faults", () => {
  it.live("CLIENT KILL: subscribe again, then Gap, then onResync's items, then live — no duplicates", () =>
    Effect.gen(function* () {
      const { connection, connectionName, channel, admin: client } = yield* fixture
      const handle = yield* RedisPubSub.make({
        connection,
        channels: [channel],
        reconnect: fast,
        onResync: (info) => Effect.succeed([{ channel, payload: `resync-${info.attempt}` }])
      })
      const signals: Array<Lifecycle.Signal<RedisPubSub.Message>> = []
      yield* handle.signals.pipe(
        Stream.runForEach((s) => Effect.sync(() => signals.push(s))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.status(handle, "Connected")
      yield* publishRange(client, channel, 1, 3)
      yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 3, "3 messages")
      assert.strictEqual(yield* killClients(client, connectionName), 1)
      yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap")
      yield* publishRange(client, channel, 4, 3)
      yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 7, "resync + 3 more")
      const tags = signals.map((s) => (s._tag === "Message" ? `m:${s.message.payload}` : s._tag))
      const gap = tags.indexOf("Gap")
      assert.deepStrictEqual(tags.slice(0, 5), ["Connecting", "Connected", "m:1", "m:2", "m:3"])
      assert.deepStrictEqual(tags.slice(gap - 1, gap + 5), ["Connected", "Gap", "m:resync-2", "m:4", "m:5", "m:6"])
      assert.strictEqual((signals[gap] as Lifecycle.Gap).delivery, "possible-loss")
    }).pipe(Effect.scoped)
  )

  it.live('"dropping" during a slow onResync drops and counts what does not fit, instead of failing', () =>
    Effect.gen(function* () {
      const { connection, connectionName, channel, admin: client } = yield* fixture
      const release = yield* Deferred.make<void>()
      let resyncing = false
      const handle = yield* RedisPubSub.make({
        connection,
        channels: [channel],
        reconnect: fast,
        overflow: { strategy: "dropping", bufferSize: 100 },
        onResync: () =>
          Effect.sync(() => {
            resyncing = true
          }).pipe(Effect.andThen(Deferred.await(release)), Effect.as([]))
      })
      yield* Wait.status(handle, "Connected")
      yield* killClients(client, connectionName)
      yield* Wait.until(() => resyncing, "the resync running")
      yield* publishRange(client, channel, 1, 30_000)
      yield* Wait.until(
        () => Effect.runSync(Effect.map(handle.stats, (s) => s.dropped === 29_900)),
        "29,900 dropped and counted"
      )
      assert.strictEqual((yield* handle.status)._tag, "Connected", "no Overflow failure")
      yield* Deferred.succeed(release, undefined)
      const kept = yield* handle.messages.pipe(Stream.take(100), Stream.runCollect)
      assert.deepStrictEqual(
        kept.map((m) => Number(m.payload)),
        Array.from({ length: 100 }, (_, i) => i + 1),
        "the first 100 are kept, the newest dropped"
      )
    }).pipe(Effect.scoped)
  )

  it.live("layerConfig: the URL from configuration (Redacted), the handle shared as a service", () =>
    Effect.gen(function* () {
      const channel = unique("layer")
      const out = yield* Effect.gen(function* () {
        const subscriber = yield* RedisPubSub.RedisPubSub
        yield* Wait.status(subscriber, "Connected")
        const received = yield* subscriber.messages.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
        yield* Effect.sleep("50 millis")
        yield* subscriber.publish(channel, "from the layer")
        return yield* Fiber.join(received)
      }).pipe(
        Effect.provide(
          RedisPubSub.layerConfig({ connection: Config.Redacted("REDIS_URL"), channels: Config.succeed([channel]) })
        ),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL })))
      )
      assert.deepStrictEqual(
        out.map((m) => m.payload),
        ["from the layer"]
      )
      const bad = yield* RedisPubSub.make({
        connection: Redacted.make("redis://:s3cret@127.0.0.1:1"),
        channels: ["c"],
        reconnect: false
      })
      const error = errorOf(yield* bad.messages.pipe(Stream.runDrain, Effect.exit))
      assert.notInclude(error.message, "s3cret")
    }).pipe(Effect.scoped)
  )

  it.live("publish opens its connection again after it broke", () =>
    Effect.gen(function* () {
      const { connectionName, channel, connection, admin: client } = yield* fixture
      const handle = yield* RedisPubSub.make({ connection, channels: [channel], reconnect: fast })
      yield* Wait.status(handle, "Connected")
      assert.strictEqual(yield* handle.publish(channel, "1"), 1)
      // Subscriber and publisher share the connection name: both are cut.
      assert.strictEqual(yield* killClients(client, connectionName), 2)
      yield* Wait.until(() => Effect.runPromise(Effect.map(handle.stats, (s) => s.reconnects === 1)), "a reconnect")
      yield* Wait.status(handle, "Connected")
      assert.strictEqual(yield* handle.publish(channel, "2"), 1)
    }).pipe(Effect.scoped)
  )

  it.live("a black hole is detected by PING within interval + timeout", () =>
    Effect.gen(function* () {
      const { proxy, channel, connection } = yield* fixture
      const handle = yield* RedisPubSub.make({
        connection,
        channels: [channel],
        reconnect: fast,
        liveness: { interval: "200 millis", timeout: "200 millis" }
      })
      // interval + timeout, plus scheduling slack on a loaded machine.
      yield* Expect.blackholeDetected(handle, proxy, { quietFor: "600 millis", withinMillis: 200 + 200 + 50 + 500 })
    }).pipe(Effect.scoped)
  )

  it.live("bad URLs and options fail at once with a Config reason; a wrong password is Auth, not retried", () =>
    Effect.gen(function* () {
      const cases: Array<[RedisPubSub.Options<string>, string]> = [
        [{ connection: "http://127.0.0.1" }, "connection"],
        [{ connection: "redis://127.0.0.1/x" }, "connection"],
        [{ connection: REDIS_URL, channels: [""] }, "channels"],
        [{ connection: REDIS_URL, patterns: "a*" as never }, "patterns"],
        [{ connection: REDIS_URL, binary: true, schema: Schema.String as never }, "schema"]
      ]
      for (const [options, option] of cases) {
        const error = errorOf(yield* RedisPubSub.stream(options).pipe(Stream.runDrain, Effect.exit))
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as ConnectorError.Config).option, option)
      }
      const secret = errorOf(
        yield* RedisPubSub.stream({ connection: "http://u:hunter2@127.0.0.1" }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.notInclude(secret.message, "hunter2")
      const { proxy, connection } = yield* fixture
      const auth = errorOf(
        yield* RedisPubSub.stream({
          connection: { ...connection, username: "streamemit-nobody", password: "nope" },
          channels: ["a"],
          reconnect: fast
        }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(auth.reason._tag, "Auth")
      assert.strictEqual((yield* proxy.stats).accepted, 1)
    }).pipe(Effect.scoped)
  )

  it.live("200 open/close cycles leave no connection in CLIENT LIST and nothing in the process", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const connectionName = unique("cycles").replaceAll(":", "-")
      const channel = unique("cycles")
      const baseline = Resources.snapshot()
      for (let i = 0; i < 200; i++) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* RedisPubSub.make({
              connection: { host: target.hostname, port: Number(target.port || 6379), connectionName },
              channels: [channel]
            })
            yield* Wait.status(handle, "Connected")
            yield* handle.publish(channel, "x")
          })
        )
      }
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(clientsNamed(client, connectionName), (lines) => lines.length === 0)),
        "no connection of ours in CLIENT LIST"
      )
      yield* Resources.expectNoLeaks(baseline)
    }).pipe(Effect.scoped)
  )
})
