import { assert, describe, it } from "@effect/vitest"
import { type ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, HttpServer, Resources, SseServer, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Metric, Schedule, Schema, Stream } from "effect"
import { Sse } from "../src/index.ts"
import { retryScanner } from "../src/internal/retry.ts"

const fast = Schedule.spaced("50 millis")
let names = 0
const uniqueName = (label: string) => `sse-${label}-${++names}`
const errorOf = Expect.connectorError

/** An SSE server that replays after Last-Event-ID, behind a fault proxy; "Bearer bad" is answered 401. */
const fixture = Effect.gen(function* () {
  const server = yield* SseServer.make({
    reply: (request) => (request.headers.authorization === "Bearer bad" ? { status: 401, end: true } : undefined)
  })
  const proxy = yield* FaultProxy.make({ target: { port: server.port } })
  return { server, proxy, url: `http://${proxy.address}/events` }
})

const publishNumbers = (server: SseServer.SseServer, from: number, count: number) =>
  server.publish(Array.from({ length: count }, (_, i) => ({ data: String(from + i) })))

Conformance.run<Sse.Event>({
  connector: "sse",
  pausable: { burstAfterPause: 32_768 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const { server, proxy, url } = yield* fixture
    return {
      proxy,
      handle: (options) => Sse.make({ url, ...options }),
      nonRetryable: (options) => Sse.make({ url, headers: { authorization: "Bearer bad" }, ...options }),
      send: (from, count) => publishNumbers(server, from, count),
      numberOf: (event) => Number(event.data),
      serverSessions: server.http.open
    }
  })
})

/**
 * Serves `chunks` (with a pause between them) as one event stream that then ends, and returns the events
 * delivered before the end.
 */
const parse = (chunks: ReadonlyArray<string | Buffer>, options: Partial<Sse.Options<string>> = {}) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.make({ contentType: "text/event-stream" })
    const seen: Array<Sse.Event> = []
    const run = yield* Sse.stream({ url: server.url, reconnect: false, ...options }).pipe(
      Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
      Effect.exit,
      Effect.forkChild({ startImmediately: true })
    )
    const exchange = yield* server.awaitExchanges(1)
    for (const chunk of chunks) {
      exchange.response.write(chunk)
      yield* Effect.sleep("15 millis")
    }
    exchange.response.end()
    const error = errorOf(yield* Fiber.join(run))
    assert.strictEqual(error.reason._tag, "Closed", "the body ended")
    return seen
  }).pipe(Effect.scoped)

const message = (data: string, id?: string, event = "message"): Sse.Event => ({ id, event, data })

describe("Sse parsing (WHATWG rules)", () => {
  it.live("data lines are joined with LF; dispatch happens on a blank line; default type is message", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* parse(["data: a\ndata: b\n\ndata: c\n\n"]), [message("a\nb"), message("c")])
    })
  )

  it.live("CR, LF and CRLF line ends, also split across chunks", () =>
    Effect.gen(function* () {
      const events = yield* parse(["data: cr\r\rdata: lf\n\ndata: crlf\r\n\r", "\ndata: split\r", "\n\r", "\n"])
      assert.deepStrictEqual(events, [message("cr"), message("lf"), message("crlf"), message("split")])
    })
  )

  it.live("comments and unknown fields are ignored; a field without a colon has an empty value", () =>
    Effect.gen(function* () {
      const events = yield* parse([": comment\nfoo: bar\ndata: x\n\ndata\n\nevent\ndata: y\n\n"])
      assert.deepStrictEqual(events, [message("x"), message(""), message("y")])
    })
  )

  it.live("one space after the colon is stripped, not two; no space is fine", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* parse(["data:  two\n\ndata:none\n\n"]), [message(" two"), message("none")])
    })
  )

  it.live("a leading BOM is ignored", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* parse(["\uFEFFdata: bom\n\n"]), [message("bom")])
    })
  )

  it.live("an id containing NUL is ignored; an event without id keeps the last id", () =>
    Effect.gen(function* () {
      const events = yield* parse(["id: 7\ndata: a\n\nid: 8\u0000x\ndata: b\n\ndata: c\n\n"])
      assert.deepStrictEqual(events, [message("a", "7"), message("b", "7"), message("c", "7")])
    })
  )

  it.live("named events carry their type; events filters the types delivered", () =>
    Effect.gen(function* () {
      const chunks = ["event: add\ndata: 1\n\nevent: remove\ndata: 2\n\ndata: 3\n\n"]
      assert.deepStrictEqual(yield* parse(chunks), [
        message("1", undefined, "add"),
        message("2", undefined, "remove"),
        message("3")
      ])
      assert.deepStrictEqual(yield* parse(chunks, { events: ["add", "message"] }), [
        message("1", undefined, "add"),
        message("3")
      ])
    })
  )

  it.live("an unterminated event at the end of the body is discarded", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* parse(["data: kept\n\ndata: lost\n"]), [message("kept")])
    })
  )

  it.live("UTF-8 split across chunks", () =>
    Effect.gen(function* () {
      const bytes = Buffer.from("data: 5€ 🙂\n\n")
      const events = yield* parse([bytes.subarray(0, 8), bytes.subarray(8, 13), bytes.subarray(13)])
      assert.deepStrictEqual(events, [message("5€ 🙂")])
    })
  )

  it("retry: only when all digits, one space stripped, also split across chunks", () => {
    const seen: Array<number> = []
    const scan = retryScanner((ms) => seen.push(ms))
    const feed = (text: string) => scan(Buffer.from(text))
    feed("retry: 100\nretry: 1x\nretry:  200\nretry:300\r\ndata: retry: 9\n")
    feed("retry: 4")
    feed("00\n")
    feed("data: a\nre")
    feed("try: 500\n\n")
    feed("retry\nretry: \n")
    assert.deepStrictEqual(seen, [100, 300, 400, 500])
  })
})

describe("Sse resume, statuses and faults", () => {
  it.live("after a reset it resumes from the last id: nothing lost, nothing duplicated; the Gap says resumed", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture
      const handle = yield* Sse.make({ url, reconnect: fast })
      yield* Wait.status(handle, "Connected")
      yield* publishNumbers(server, 1, 5)
      const signals = yield* handle.signals.pipe(
        Stream.takeUntil((s) => s._tag === "Message" && s.message.data === "10"),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(() => server.http.exchanges.length === 1, "first request")
      yield* Effect.sleep("100 millis")
      yield* proxy.refuse
      yield* proxy.reset
      // Published while we are away: the replay brings them.
      yield* publishNumbers(server, 6, 5)
      yield* proxy.restore
      const all = yield* Fiber.join(signals)
      const data = all.flatMap((s) => (s._tag === "Message" ? [s.message.data] : []))
      assert.deepStrictEqual(data, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])
      const gap = all.find((s): s is Lifecycle.Gap => s._tag === "Gap")
      assert.strictEqual(gap?.delivery, "resumed")
      assert.deepStrictEqual(server.lastEventIds(), [undefined, "5"])
    }).pipe(Effect.scoped)
  )

  it.live('serverReplays: false: a reconnect still sends the last id, and the Gap says "possible-loss"', () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture
      const handle = yield* Sse.make({ url, reconnect: fast, serverReplays: false })
      yield* Wait.status(handle, "Connected")
      yield* publishNumbers(server, 1, 3)
      const signals = yield* handle.signals.pipe(
        Stream.takeUntil((s) => s._tag === "Gap"),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(() => server.http.exchanges.length === 1, "first request")
      yield* Effect.sleep("100 millis")
      yield* proxy.reset
      const all = yield* Fiber.join(signals)
      const gap = all.find((s): s is Lifecycle.Gap => s._tag === "Gap")
      assert.strictEqual(gap?.delivery, "possible-loss")
      assert.deepStrictEqual(server.lastEventIds(), [undefined, "3"])
      const bad = yield* Effect.exit(Sse.make({ url, serverReplays: "no" as unknown as boolean }))
      assert.strictEqual((errorOf(bad).reason as ConnectorError.Config).option, "serverReplays")
    }).pipe(Effect.scoped)
  )

  it.live('without any id the Gap says "possible-loss"; lastEventId is sent on the first request', () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: () => ({ body: "data: x\n\n" })
      })
      const handle = yield* Sse.make({ url: server.url, reconnect: fast })
      const gap = yield* handle.signals.pipe(
        Stream.filter((s): s is Lifecycle.Gap => s._tag === "Gap"),
        Stream.runHead,
        Effect.forkChild({ startImmediately: true })
      )
      const first = yield* server.awaitExchanges(1)
      yield* Effect.sleep("50 millis")
      first.response.end()
      const event = yield* Fiber.join(gap)
      assert.strictEqual(event._tag === "Some" && event.value.delivery, "possible-loss")

      const sse = yield* SseServer.make()
      yield* Sse.stream({ url: sse.url, lastEventId: "41", reconnect: false }).pipe(
        Stream.runDrain,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(() => sse.lastEventIds().length === 1, "a request")
      assert.deepStrictEqual(sse.lastEventIds(), ["41"])
    }).pipe(Effect.scoped)
  )

  it.live("an id beyond Latin-1 is sent as UTF-8 on every reconnect (and so is the lastEventId option)", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: (_request, index) => ({ body: `id: ключ-${index + 1} ✓\ndata: ${index + 1}\n\n`, end: index < 2 })
      })
      const handle = yield* Sse.make({ url: server.url, reconnect: fast, lastEventId: "начало" })
      const data = yield* handle.messages.pipe(Stream.take(3), Stream.runCollect)
      assert.deepStrictEqual(
        data.map((e) => e.data),
        ["1", "2", "3"]
      )
      const sent = server.exchanges.map((e) => {
        const header = e.request.headers["last-event-id"]
        return typeof header === "string" ? Buffer.from(header, "latin1").toString("utf8") : undefined
      })
      assert.deepStrictEqual(sent.slice(0, 3), ["начало", "ключ-1 ✓", "ключ-2 ✓"])
      assert.strictEqual(data[2].id, "ключ-3 ✓")
    }).pipe(Effect.scoped)
  )

  it.live("a consumer stalled far longer than idleTimeout gets every event, in order, on one connection", () =>
    Effect.gen(function* () {
      const { server, url } = yield* fixture
      const total = 50_000
      const handle = yield* Sse.make({ url, reconnect: fast, idleTimeout: "150 millis", overflow: { bufferSize: 512 } })
      yield* Wait.status(handle, "Connected")
      // A live server says so between events (as real ones do): any reconnect below is ours, not the silence
      // after the last event, which a consumer slow on the tail could otherwise outlast.
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(server.raw(": ping\n\n"), Effect.sleep("50 millis"))))
      yield* publishNumbers(server, 1, total)
      // Stalled for ten idle timeouts: the body is not read all that time, so no byte arrives.
      yield* Effect.sleep("1500 millis")
      let expected = 1
      yield* handle.messages.pipe(
        Stream.take(total),
        Stream.runForEach((e) =>
          Effect.sync(() => {
            if (Number(e.data) === expected) expected++
          })
        )
      )
      assert.strictEqual(expected, total + 1, "every event, in order")
      assert.strictEqual(server.http.exchanges.length, 1, "no reconnect")
      assert.isAbove((yield* handle.stats).pauses, 0)
    }).pipe(Effect.scoped)
  )

  it.live("headers given as an Effect are evaluated on every attempt", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: () => ({ body: "data: x\n\n" })
      })
      let token = 0
      yield* Sse.stream({
        url: server.url,
        reconnect: fast,
        headers: Effect.sync(() => ({ authorization: `Bearer ${++token}` }))
      }).pipe(Stream.runDrain, Effect.forkChild({ startImmediately: true }))
      const first = yield* server.awaitExchanges(1)
      yield* Effect.sleep("50 millis")
      first.response.end()
      yield* server.awaitExchanges(2)
      assert.deepStrictEqual(
        server.exchanges.map((e) => e.request.headers.authorization),
        ["Bearer 1", "Bearer 2"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("retry: from the server is the floor of the next reconnect delay", () =>
    Effect.gen(function* () {
      const server = yield* SseServer.make({ retry: 700 })
      const handle = yield* Sse.make({ url: server.url, reconnect: fast })
      const disconnected = yield* handle.events.pipe(
        Stream.filter((e): e is Lifecycle.Disconnected => e._tag === "Disconnected"),
        Stream.runHead,
        Effect.forkChild({ startImmediately: true })
      )
      const first = yield* server.http.awaitExchanges(1)
      yield* Wait.status(handle, "Connected")
      yield* Effect.sleep("50 millis")
      const start = Date.now()
      first.response.end()
      yield* server.http.awaitExchanges(2)
      assert.isAtLeast(Date.now() - start, 650)
      const event = yield* Fiber.join(disconnected)
      assert.isTrue(event._tag === "Some" && event.value.retryIn !== undefined)
    }).pipe(Effect.scoped)
  )

  it.live("204 ends the stream; 401 is Auth; 404 a non-retryable Protocol error naming the status", () =>
    Effect.gen(function* () {
      let status = 204
      const server = yield* HttpServer.make({ contentType: "text/event-stream", reply: () => ({ status, end: true }) })
      const none = yield* Sse.stream({ url: server.url, reconnect: fast }).pipe(Stream.runCollect)
      assert.deepStrictEqual(none, [])
      status = 401
      const auth = errorOf(yield* Sse.stream({ url: server.url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit))
      assert.strictEqual(auth.reason._tag, "Auth")
      status = 404
      const missing = errorOf(
        yield* Sse.stream({ url: server.url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(missing.reason._tag, "Protocol")
      assert.include(missing.message, "404")
      assert.isFalse(missing.isRetryable)
      assert.strictEqual(server.exchanges.length, 3, "one request each: no retry")
    }).pipe(Effect.scoped)
  )

  it.live("503 and 429 are retried no sooner than Retry-After says", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: (_request, index) =>
          index === 0
            ? { status: 503, headers: { "retry-after": "1" }, end: true }
            : index === 1
              ? { status: 429, end: true }
              : { body: "data: ok\n\n" }
      })
      const start = Date.now()
      const first = yield* Sse.stream({ url: server.url, reconnect: fast }).pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(first, [message("ok")])
      assert.isAtLeast(Date.now() - start, 950)
      assert.strictEqual(server.exchanges.length, 3)
    }).pipe(Effect.scoped)
  )

  it.live("a wrong content type is a non-retryable Protocol error naming it", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/html", reply: () => ({ body: "<p>", end: true }) })
      const error = errorOf(yield* Sse.stream({ url: server.url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit))
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.include(error.message, "text/html")
      assert.strictEqual(server.exchanges.length, 1)
    }).pipe(Effect.scoped)
  )

  it.live("comment heartbeats keep a quiet stream alive; a black hole is cut by the idle timer", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* fixture
      const handle = yield* Sse.make({ url, reconnect: fast, idleTimeout: "300 millis" })
      const errors: Array<string> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "Disconnected" && errors.push(e.error.reason._tag))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.status(handle, "Connected")
      for (let i = 0; i < 8; i++) {
        yield* Effect.sleep("100 millis")
        yield* server.raw(": ping\n\n")
      }
      assert.deepStrictEqual(errors, [], "heartbeats kept the connection")
      assert.strictEqual(server.http.exchanges.length, 1)
      yield* proxy.blackhole
      yield* Wait.until(() => errors.includes("Timeout"), "the idle timer", 3000)
      yield* proxy.restore
      yield* server.http.awaitExchanges(2)
    }).pipe(Effect.scoped)
  )

  it.live("an event over maxEventSize is a non-retryable Protocol error", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: () => ({ body: `data: small\n\ndata: ${"x".repeat(5000)}\n\n` })
      })
      const seen: Array<Sse.Event> = []
      const exit = yield* Sse.stream({ url: server.url, maxEventSize: 1024, reconnect: fast }).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e))),
        Effect.exit
      )
      const error = errorOf(exit)
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.include(error.message, "maxEventSize")
      assert.deepStrictEqual(seen, [message("small")])
      // Buffered across chunks without an end: the parser's own bound.
      const unterminated = yield* HttpServer.make({
        contentType: "text/event-stream",
        reply: () => ({ body: `data: ${"y".repeat(5000)}` })
      })
      const buffered = errorOf(
        yield* Sse.stream({ url: unterminated.url, maxEventSize: 1024, reconnect: fast }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual(buffered.reason._tag, "Protocol")
      assert.include(buffered.message, "maxEventSize")
    }).pipe(Effect.scoped)
  )

  it.live('a Schema decodes JSON data: "fail" stops with a Decode error; "skip" counts', () =>
    Effect.gen(function* () {
      const body = 'id: 1\ndata: {"n":1}\n\nid: 2\ndata: {oops\n\nid: 3\ndata: {"n":"x"}\n\nid: 4\ndata: {"n":4}\n\n'
      const server = yield* HttpServer.make({ contentType: "text/event-stream", reply: () => ({ body }) })
      const schema = Schema.Struct({ n: Schema.Number })
      const error = errorOf(
        yield* Sse.stream({ url: server.url, schema, reconnect: fast }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, "event 2")
      const name = uniqueName("skip")
      const events = yield* Sse.stream({ url: server.url, schema, onDecodeError: "skip", name }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      assert.deepStrictEqual(
        events.map((e) => e.data.n),
        [1, 4]
      )
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("sse", name).decodeSkipped)).count, 2)
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const cases: Array<[Sse.Options<string>, string]> = [
        [{ url: "ws://x" }, "url"],
        [{ url: "http://127.0.0.1:1", events: [] }, "events"],
        [{ url: "http://127.0.0.1:1", lastEventId: "a\nb" }, "lastEventId"],
        [{ url: "http://127.0.0.1:1", idleTimeout: 0 }, "idleTimeout"],
        [{ url: "http://127.0.0.1:1", maxEventSize: 0 }, "maxEventSize"],
        [{ url: "http://127.0.0.1:1", idleTimeout: "soon" as never }, "idleTimeout"],
        [{ url: "http://127.0.0.1:1", onDecodeError: "ignore" as never }, "onDecodeError"]
      ]
      for (const [options, option] of cases) {
        const error = errorOf(yield* Sse.stream(options).pipe(Stream.runDrain, Effect.exit))
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as ConnectorError.Config).option, option)
      }
    })
  )

  it.live(
    "500 connect/close cycles leave no sockets or timers behind",
    () =>
      Effect.gen(function* () {
        const server = yield* SseServer.make()
        yield* server.publish([{ data: "hello" }])
        const baseline = Resources.snapshot()
        for (let i = 0; i < 500; i++) {
          const first = yield* Sse.stream({ url: server.url, reconnect: false }).pipe(Stream.runHead)
          assert.strictEqual(first._tag, "Some")
        }
        yield* Wait.until(() => Effect.runSync(server.http.open) === 0, "the server to see every request closed")
        yield* Resources.expectNoLeaks(baseline)
      }).pipe(Effect.scoped),
    // Hundreds of real connections: slow on a loaded 2-core machine, which is not what this test is about.
    120_000
  )
})
