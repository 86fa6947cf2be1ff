import { assert, describe, it } from "@effect/vitest"
import { type ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, Resources, Wait, WsServer } from "@streamemit/testkit"
import { Duration, Effect, Exit, Fiber, Metric, Redacted, Schedule, Schema, Stream } from "effect"
import { WebSocket } from "../src/index.ts"

const fast = Schedule.spaced("50 millis")
let names = 0
const uniqueName = (label: string) => `ws-${label}-${++names}`

/** A scripted server behind a fault proxy; "Bearer bad" is refused with 401. */
const fixture = (serverOptions: WsServer.Options = {}) =>
  Effect.gen(function* () {
    const server = yield* WsServer.make({
      handshake: (request) => (request.headers.authorization === "Bearer bad" ? 401 : undefined),
      ...serverOptions
    })
    const proxy = yield* FaultProxy.make({ target: { port: server.port } })
    return { server, proxy, url: `ws://${proxy.address}/feed` }
  })

const errorOf = Expect.connectorError

Conformance.run<string>({
  connector: "websocket",
  pausable: { burstAfterPause: 32_768 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const { server, proxy, url } = yield* fixture()
    return {
      proxy,
      handle: (options) => WebSocket.make({ url, ...options }),
      nonRetryable: (options) => WebSocket.make({ url, headers: { authorization: "Bearer bad" }, ...options }),
      send: (from, count) =>
        Effect.gen(function* () {
          const connection = server.connections.at(-1)
          if (connection === undefined) return yield* Effect.fail(new Error("no connection to send on"))
          for (let i = from; i < from + count; i++) connection.socket.send(String(i))
        }),
      numberOf: Number,
      serverSessions: server.open
    }
  })
})

describe("WebSocket", () => {
  it.live("delivers text messages in order, with send and onOpen on every connection", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture()
      const order: Array<string> = []
      const handle = yield* WebSocket.make({
        url,
        reconnect: fast,
        onOpen: (socket) =>
          Effect.andThen(
            socket.send("subscribe"),
            Effect.sync(() => order.push("onOpen"))
          )
      })
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "Connected" && order.push("Connected"))),
        Effect.forkChild({ startImmediately: true })
      )
      const first = yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      // onOpen ran (and its message was written) before Connected.
      assert.deepStrictEqual(order, ["onOpen", "Connected"])
      yield* Wait.until(() => first.received.length === 1, "the subscribe message")
      assert.deepStrictEqual(first.received, ["subscribe"])
      yield* handle.send("hello")
      yield* Wait.until(() => first.received.length === 2, "the sent message")
      assert.deepStrictEqual(first.received, ["subscribe", "hello"])

      yield* proxy.reset
      const second = yield* server.awaitConnections(2)
      yield* Wait.until(() => second.received.length === 1, "the subscribe of the new connection")
      assert.deepStrictEqual(second.received, ["subscribe"])
    }).pipe(Effect.scoped)
  )

  it.live("the README's handle example: make, then send at once, waits for the connection", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const ws = yield* WebSocket.make({ url })
      yield* ws.send("hello")
      const connection = yield* server.awaitConnections(1)
      yield* Wait.until(() => connection.received.length === 1, "the message")
      assert.deepStrictEqual(connection.received, ["hello"])
    }).pipe(Effect.scoped)
  )

  it.live("a live socket keeps only its own listeners: none of the handshake's outlives it", () =>
    Effect.gen(function* () {
      const { url } = yield* fixture()
      const handle = yield* WebSocket.make({ url })
      const socket = yield* handle.awaitConnection
      // A connection may stay open for days: a listener left from the handshake is memory held that long.
      assert.strictEqual(socket.listenerCount("open"), 0)
      assert.strictEqual(socket.listenerCount("unexpected-response"), 0)
      // The one error listener that stays is the connection's (it reports a broken socket to the session).
      assert.strictEqual(socket.listenerCount("error"), 1)
    }).pipe(Effect.scoped)
  )

  it.live("send waits at most sendTimeout for a connection, then fails with a Timeout naming the option", () =>
    Effect.gen(function* () {
      const { proxy, url } = yield* fixture()
      yield* proxy.refuse
      const handle = yield* WebSocket.make({ url, reconnect: fast, sendTimeout: "200 millis" })
      const started = Date.now()
      const error = yield* Effect.flip(handle.send("lost?"))
      assert.strictEqual(error.reason._tag, "Timeout")
      assert.include(error.message, "sendTimeout")
      assert.isAtLeast(Date.now() - started, 190)
    }).pipe(Effect.scoped)
  )

  it.live("a consumer stalled far longer than the heartbeat gets every message, in order, on one connection", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const total = 100_000
      const handle = yield* WebSocket.make({
        url,
        reconnect: fast,
        // A pong may come late on a loaded 2-core machine (CI runs every package at once): 500 ms to answer, still
        // well inside the stall below.
        heartbeat: { interval: "100 millis", timeout: "500 millis" },
        overflow: { bufferSize: 1024 }
      })
      const connection = yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      for (let i = 0; i < total; i++) connection.socket.send(String(i))
      // Stalled for 15 heartbeat intervals (2.5 × interval + timeout) before taking anything: the socket is paused
      // all that time.
      yield* Effect.sleep("1500 millis")
      let expected = 0
      let inOrder = true
      yield* handle.messages.pipe(
        Stream.take(total),
        Stream.runForEach((m) =>
          Effect.sync(() => {
            if (Number(m) !== expected++) inOrder = false
          })
        )
      )
      assert.strictEqual(expected, total)
      assert.isTrue(inOrder)
      assert.strictEqual(server.connections.length, 1, "no reconnect")
      assert.strictEqual((yield* handle.stats).reconnects, 0)
      assert.isAbove((yield* handle.stats).pauses, 0, "the socket was paused")
    }).pipe(Effect.scoped)
  )

  it.live("an abrupt server-side close reconnects; close 1000 ends the stream", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const handle = yield* WebSocket.make({ url, reconnect: fast })
      const signals: Array<string> = []
      const done = yield* handle.signals.pipe(
        Stream.runForEach((s) => Effect.sync(() => signals.push(s._tag === "Message" ? s.message : s._tag))),
        Effect.exit,
        Effect.forkChild({ startImmediately: true })
      )
      const first = yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      first.socket.send("a")
      first.socket.terminate() // no close frame: abnormal closure
      const second = yield* server.awaitConnections(2)
      yield* Wait.status(handle, "Connected")
      second.socket.send("b")
      second.socket.close(1000, "bye")
      const exit = yield* Fiber.join(done)
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(
        signals.filter((s) => s !== "Connecting"),
        ["Connected", "a", "Disconnected", "Connected", "Gap", "b", "Closed"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("close codes declared fatal fail the stream for good; others reconnect", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const handle = yield* WebSocket.make({
        url,
        reconnect: fast,
        closeCodes: { fatal: [1008, [4000, 4999]] }
      })
      const result = yield* handle.messages.pipe(Stream.runDrain, Effect.exit, Effect.forkChild)
      const first = yield* server.awaitConnections(1)
      first.socket.close(1011, "internal error") // retryable
      const second = yield* server.awaitConnections(2)
      second.socket.close(4403, "banned")
      const error = errorOf(yield* Fiber.join(result))
      assert.strictEqual(error.reason._tag, "Closed")
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "4403")
      assert.include(error.message, "banned")
      assert.strictEqual(error.reason.closeCode, 4403, "the close code as data")
      assert.strictEqual(server.connections.length, 2)
    }).pipe(Effect.scoped)
  )

  it.live("a black hole is detected by the heartbeat within interval + timeout, then reconnects", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture()
      const handle = yield* WebSocket.make({
        url,
        reconnect: fast,
        heartbeat: { interval: "300 millis", timeout: "300 millis" }
      })
      const events: Array<{ readonly event: Lifecycle.Event; readonly at: number }> = []
      yield* handle.events.pipe(
        Stream.runForEach((event) => Effect.sync(() => events.push({ event, at: Date.now() }))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.status(handle, "Connected")
      // Healthy and idle: pings are answered, the connection stays.
      yield* Effect.sleep("1 second")
      assert.strictEqual(server.connections.length, 1)
      const start = Date.now()
      yield* proxy.blackhole
      yield* Wait.until(() => events.some((e) => e.event._tag === "Disconnected"), "the heartbeat to fail")
      const disconnected = events.find((e) => e.event._tag === "Disconnected")!
      const detectedAfter = disconnected.at - start
      // interval + timeout, and scheduling slack.
      assert.isAtMost(detectedAfter, 300 + 300 + 75 + 400, "detected within interval + timeout")
      assert.strictEqual((disconnected.event as Lifecycle.Disconnected).error.reason._tag, "Timeout")
      yield* proxy.restore
      yield* server.awaitConnections(2)
      yield* Wait.status(handle, "Connected")
    }).pipe(Effect.scoped)
  )

  it.live("a frame over maxPayload is a Protocol error, counted, and the connector reconnects", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const name = uniqueName("payload")
      const handle = yield* WebSocket.make({ url, reconnect: fast, maxPayload: 1024, name })
      const received = yield* handle.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      const first = yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      first.socket.send("small")
      first.socket.send("x".repeat(4096))
      const second = yield* server.awaitConnections(2)
      yield* Wait.status(handle, "Connected")
      second.socket.send("after")
      assert.deepStrictEqual(yield* Fiber.join(received), ["small", "after"])
      const protocolErrors = yield* Metric.value(Metrics.forConnector("websocket", name).errors("Protocol"))
      assert.strictEqual(protocolErrors.count, 1)
    }).pipe(Effect.scoped)
  )

  describe("Schema decoding", () => {
    const Tick = Schema.Struct({ seq: Schema.Number })

    it.live('"skip" drops invalid JSON and mismatches, counted', () =>
      Effect.gen(function* () {
        const { server, url } = yield* fixture()
        const name = uniqueName("skip")
        const handle = yield* WebSocket.make({ url, schema: Tick, onDecodeError: "skip", name })
        const received = yield* handle.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        const connection = yield* server.awaitConnections(1)
        yield* Wait.status(handle, "Connected")
        for (const text of ['{"seq":1}', "{not json", '{"seq":"2"}', '{"seq":3}']) connection.socket.send(text)
        assert.deepStrictEqual(yield* Fiber.join(received), [{ seq: 1 }, { seq: 3 }])
        assert.strictEqual((yield* Metric.value(Metrics.forConnector("websocket", name).decodeSkipped)).count, 2)
      }).pipe(Effect.scoped)
    )

    it.live('"fail" ends the stream with a non-retryable Decode error after the valid messages', () =>
      Effect.gen(function* () {
        const { server, url } = yield* fixture()
        const seen: Array<{ readonly seq: number }> = []
        const result = yield* WebSocket.stream({ url, schema: Tick, reconnect: fast }).pipe(
          Stream.runForEach((tick) => Effect.sync(() => seen.push(tick))),
          Effect.exit,
          Effect.forkChild
        )
        const connection = yield* server.awaitConnections(1)
        connection.socket.send('{"seq":1}')
        connection.socket.send("{oops")
        const error = errorOf(yield* Fiber.join(result))
        assert.strictEqual(error.reason._tag, "Decode")
        assert.isFalse(error.isRetryable)
        assert.include(error.message, "invalid JSON")
        assert.deepStrictEqual(seen, [{ seq: 1 }])
        assert.strictEqual(server.connections.length, 1, "no reconnect after a Decode error")
      }).pipe(Effect.scoped)
    )
  })

  it.live("binary mode delivers bytes", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const received = yield* WebSocket.stream({ url, binary: true }).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild
      )
      const connection = yield* server.awaitConnections(1)
      yield* Wait.until(() => connection.socket.readyState === connection.socket.OPEN, "open")
      connection.socket.send(Buffer.from([1, 2, 3]))
      const [bytes] = yield* Fiber.join(received)
      assert.instanceOf(bytes, Uint8Array)
      assert.deepStrictEqual([...bytes], [1, 2, 3])
    }).pipe(Effect.scoped)
  )

  it.live("text mode: a binary frame of UTF-8 is delivered intact as text, one that is not fails naming binary", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const received = yield* WebSocket.stream({ url }).pipe(Stream.runCollect, Effect.exit, Effect.forkChild)
      const connection = yield* server.awaitConnections(1)
      yield* Wait.until(() => connection.socket.readyState === connection.socket.OPEN, "open")
      connection.socket.send(Buffer.from("héllo ✓ 𝄞", "utf8"), { binary: true })
      connection.socket.send("text")
      connection.socket.send(Buffer.from([0xff, 0xfe, 0x41]), { binary: true })
      const exit = yield* Fiber.join(received)
      const error = errorOf(exit)
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, "binary: true")
      assert.isFalse(error.isRetryable)
      const skipped = yield* WebSocket.stream({ url, onDecodeError: "skip", name: uniqueName("binary-skip") }).pipe(
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      const second = yield* server.awaitConnections(2)
      yield* Wait.until(() => second.socket.readyState === second.socket.OPEN, "open")
      second.socket.send(Buffer.from("héllo ✓ 𝄞", "utf8"), { binary: true })
      second.socket.send(Buffer.from([0xff]), { binary: true })
      second.socket.send("after")
      assert.deepStrictEqual(yield* Fiber.join(skipped), ["héllo ✓ 𝄞", "after"])
    }).pipe(Effect.scoped)
  )

  it.live("wss:// against a plain server fails at once, not retried, with a message that says why", () =>
    Effect.gen(function* () {
      const { server } = yield* fixture()
      const error = errorOf(
        yield* WebSocket.stream({ url: `wss://127.0.0.1:${server.port}/feed`, reconnect: fast }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual(error.reason._tag, "Connect")
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "does not speak TLS")
      assert.notInclude(error.message, "SSL routines")
    }).pipe(Effect.scoped)
  )

  it.live("headers given as an Effect are evaluated on every attempt; Redacted values are sent in clear", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture()
      let issued = 0
      const handle = yield* WebSocket.make({
        url,
        reconnect: fast,
        headers: Effect.sync(() => ({ authorization: Redacted.make(`Bearer token-${++issued}`) }))
      })
      yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      yield* proxy.reset
      yield* server.awaitConnections(2)
      assert.deepStrictEqual(
        server.connections.map((c) => c.request.headers.authorization),
        ["Bearer token-1", "Bearer token-2"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("handshake statuses: 401 is a non-retryable Auth error; 503 and 408 are retried", () =>
    Effect.gen(function* () {
      let refuseWith = 503
      const { server, url } = yield* fixture({ handshake: () => (refuseWith === 0 ? undefined : refuseWith) })
      const retried = yield* WebSocket.make({ url, reconnect: fast })
      const events: Array<Lifecycle.Event> = []
      yield* retried.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(() => events.filter((e) => e._tag === "Disconnected").length >= 2, "two 503s")
      const disconnected = events.find((e): e is Lifecycle.Disconnected => e._tag === "Disconnected")!
      assert.strictEqual(disconnected.error.reason._tag, "Connect")
      assert.include(disconnected.error.message, "503")
      refuseWith = 0
      yield* Wait.status(retried, "Connected")
      assert.strictEqual(server.connections.length, 1)

      // 408 is retried, as core classifies every HTTP status.
      refuseWith = 408
      const timedOut = yield* WebSocket.make({ url, reconnect: fast })
      const reasons: Array<string> = []
      yield* timedOut.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "Disconnected" && reasons.push(e.error.reason._tag))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(() => reasons.length >= 2, "two 408s, retried")
      assert.deepStrictEqual(reasons.slice(0, 2), ["Connect", "Connect"])

      refuseWith = 401
      const error = errorOf(yield* WebSocket.stream({ url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit))
      assert.strictEqual(error.reason._tag, "Auth")
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "401")
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const cases: Array<[WebSocket.Options, string]> = [
        [{ url: "not a url" }, "url"],
        [{ url: "ftp://example.com" }, "url"],
        [{ url: "ws://127.0.0.1:1", maxPayload: 0 }, "maxPayload"],
        [{ url: "ws://127.0.0.1:1", closeCodes: { fatal: [99] } }, "closeCodes.fatal"],
        [{ url: "ws://127.0.0.1:1", heartbeat: { interval: "often" as Duration.Input } }, "heartbeat.interval"],
        [{ url: "ws://127.0.0.1:1", handshakeTimeout: "soon" as Duration.Input }, "handshakeTimeout"],
        [{ url: "ws://127.0.0.1:1", onDecodeError: "ignore" as "skip" }, "onDecodeError"],
        [{ url: "ws://127.0.0.1:1", overflow: { strategy: "drop" as "dropping" } }, "overflow.strategy"]
      ]
      for (const [options, option] of cases) {
        const error = errorOf(yield* WebSocket.stream(options).pipe(Stream.runDrain, Effect.exit))
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as ConnectorError.Config).option, option)
      }
      // A password in the URL never reaches the message.
      const secret = errorOf(
        yield* WebSocket.stream({ url: "gopher://user:hunter2@host/x" }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.notInclude(secret.message, "hunter2")
    })
  )

  it.live('"suspend" is real TCP backpressure: the server\'s send buffer fills, the client stays bounded', () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture()
      const total = 20_000
      const payload = "x".repeat(1000)
      const handle = yield* WebSocket.make({ url, overflow: { bufferSize: 64, hardCap: 256 } })
      const connection = yield* server.awaitConnections(1)
      yield* Wait.status(handle, "Connected")
      let maxDepth = 0
      let seen = 0
      let order = true
      const consumer = yield* handle.messages.pipe(
        Stream.runForEach((message) =>
          Effect.gen(function* () {
            if (Number(message.slice(0, message.indexOf(":"))) !== seen) order = false
            seen++
            maxDepth = Math.max(maxDepth, (yield* handle.stats).depth)
            if (seen < 2000) yield* Effect.sleep("1 millis") // slow at first
          })
        ),
        Effect.forkChild
      )
      for (let i = 0; i < total; i++) connection.socket.send(`${i}:${payload}`)
      // The client stopped reading: the server holds what it could not send.
      yield* Wait.until(() => connection.socket.bufferedAmount > 4_000_000, "the server's send buffer to fill")
      assert.isAtMost(seen, 2000)
      yield* Wait.until(() => seen === total, `all ${total} messages`, 30_000)
      yield* Fiber.interrupt(consumer)
      assert.isTrue(order, "in order")
      assert.isAtMost(maxDepth, 256)
      assert.strictEqual(connection.socket.bufferedAmount, 0)
    }).pipe(Effect.scoped)
  )

  it.live(
    "500 connect/close cycles leave no sockets or timers behind",
    () =>
      Effect.gen(function* () {
        const { server, url } = yield* fixture()
        const baseline = Resources.snapshot()
        for (let i = 1; i <= 500; i++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const handle = yield* WebSocket.make({ url, reconnect: false })
              yield* Wait.status(handle, "Connected", 5000)
            })
          )
        }
        assert.strictEqual(server.connections.length, 500)
        yield* Wait.until(() => Effect.runSync(server.open) === 0, "the server to see every close")
        yield* Resources.expectNoLeaks(baseline)
        // The server saw polite closes, not drops.
        assert.isTrue(server.connections.every((c) => c.socket.readyState === c.socket.CLOSED))
      }).pipe(Effect.scoped),
    // Hundreds of real connections: slow on a loaded 2-core machine, which is not what this test is about.
    120_000
  )

  it.live("a Disconnected event says when the next attempt comes", () =>
    Effect.gen(function* () {
      const { proxy, url } = yield* fixture()
      yield* proxy.refuse
      const handle = yield* WebSocket.make({ url, reconnect: Schedule.spaced("200 millis") })
      const event = yield* handle.events.pipe(
        Stream.filter((e): e is Lifecycle.Disconnected => e._tag === "Disconnected"),
        Stream.runHead
      )
      assert.isTrue(event._tag === "Some")
      const disconnected = (event as { value: Lifecycle.Disconnected }).value
      assert.strictEqual(Duration.toMillis(disconnected.retryIn!), 200)
      assert.strictEqual(disconnected.error.reason._tag, "Connect")
      assert.include(disconnected.error.message, "ECONNREFUSED")
    }).pipe(Effect.scoped)
  )
})
