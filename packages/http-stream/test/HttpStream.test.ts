import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, HttpServer, Resources, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Metric, Schedule, Schema, Stream } from "effect"
import { HttpStream } from "../src/index.ts"

const fast = Schedule.spaced("50 millis")
let names = 0
const uniqueName = (label: string) => `http-${label}-${++names}`

const errorOf = Expect.connectorError

/** An NDJSON server behind a fault proxy; "Bearer bad" is answered 401. */
const ndjsonFixture = (reply?: Parameters<typeof HttpServer.make>[0]["reply"]) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.make({
      contentType: "application/x-ndjson",
      reply: (request, index) =>
        request.headers.authorization === "Bearer bad" ? { status: 401, end: true } : reply?.(request, index)
    })
    const proxy = yield* FaultProxy.make({ target: { port: server.port } })
    return { server, proxy, url: `http://${proxy.address}/feed` }
  })

Conformance.run<{ readonly n: number }>({
  connector: "http-stream",
  pausable: { burstAfterPause: 32_768 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const { server, proxy, url } = yield* ndjsonFixture()
    return {
      proxy,
      handle: (options) => HttpStream.make<{ readonly n: number }>({ url, framing: "ndjson", ...options }),
      nonRetryable: (options) =>
        HttpStream.make<{ readonly n: number }>({
          url,
          framing: "ndjson",
          headers: { authorization: "Bearer bad" },
          ...options
        }),
      send: (from, count) =>
        server.write(Array.from({ length: count }, (_, i) => `${JSON.stringify({ n: from + i })}\n`).join("")),
      numberOf: (item) => item.n,
      serverSessions: server.open
    }
  })
})

const collect = <A>(stream: Stream.Stream<A, ConnectorError.ConnectorError>, n: number) =>
  stream.pipe(Stream.take(n), Stream.runCollect, Effect.forkChild({ startImmediately: true }))

describe("HttpStream framing", () => {
  it.live("lines: LF, CRLF and CR line ends, split across chunks, multi-byte UTF-8 split, last line unterminated", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/plain" })
      const received = yield* collect(HttpStream.stream({ url: server.url }), 7)
      const exchange = yield* server.awaitExchanges(1)
      const euro = Buffer.from("€")
      const chunks = [
        Buffer.from("one\ntw"),
        Buffer.from("o\r"),
        Buffer.from("\nthree\rfour\r\n"),
        Buffer.concat([Buffer.from("price: 5"), euro.subarray(0, 1)]),
        Buffer.concat([euro.subarray(1), Buffer.from("\n\nlast")])
      ]
      for (const chunk of chunks) {
        exchange.response.write(chunk)
        yield* Effect.sleep("20 millis")
      }
      exchange.response.end()
      assert.deepStrictEqual(yield* Fiber.join(received), ["one", "two", "three", "four", "price: 5€", "", "last"])
    }).pipe(Effect.scoped)
  )

  it.live("ndjson: an invalid line fails with a Decode error naming its line number", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "application/x-ndjson",
        reply: () => ({ body: '{"a":1}\n\n{"a":2}\n{oops\n{"a":3}\n', end: true })
      })
      const seen: Array<unknown> = []
      const exit = yield* HttpStream.stream({ url: server.url, framing: "ndjson" }).pipe(
        Stream.runForEach((v) => Effect.sync(() => seen.push(v))),
        Effect.exit
      )
      const error = errorOf(exit)
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, "line 4")
      assert.deepStrictEqual(seen, [{ a: 1 }, { a: 2 }])
    }).pipe(Effect.scoped)
  )

  it.live('ndjson with a Schema and "skip": invalid lines are skipped and counted', () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "application/x-ndjson",
        reply: () => ({ body: '{"a":1}\n{oops\n{"a":"x"}\n{"a":3}\n', end: true })
      })
      const name = uniqueName("skip")
      const out = yield* HttpStream.stream({
        url: server.url,
        framing: "ndjson",
        schema: Schema.Struct({ a: Schema.Number }),
        onDecodeError: "skip",
        name
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [{ a: 1 }, { a: 3 }])
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("http-stream", name).decodeSkipped)).count, 2)
    }).pipe(Effect.scoped)
  )

  it.live("an oversized record fails with a Protocol error, or is skipped and counted", () =>
    Effect.gen(function* () {
      const body = `short\n${"x".repeat(5000)}\nafter\n`
      const server = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body, end: true }) })
      const error = errorOf(
        yield* HttpStream.stream({ url: server.url, maxRecordSize: 1024 }).pipe(Stream.runCollect, Effect.exit)
      )
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.include(error.message, "line 2")
      assert.isFalse(error.isRetryable)
      const skipped = yield* HttpStream.stream({ url: server.url, maxRecordSize: 1024, onOversized: "skip" }).pipe(
        Stream.runCollect
      )
      assert.deepStrictEqual(skipped, ["short", "after"])
    }).pipe(Effect.scoped)
  )

  it.live("sse framing: events with id and type; a comment-only heartbeat keeps the idle timer quiet", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/event-stream" })
      const received = yield* collect(
        HttpStream.stream({ url: server.url, framing: "sse", idleTimeout: "300 millis" }),
        2
      )
      const exchange = yield* server.awaitExchanges(1)
      exchange.response.write("id: 1\nevent: tick\ndata: a\ndata: b\n\n")
      for (let i = 0; i < 5; i++) {
        yield* Effect.sleep("150 millis")
        exchange.response.write(": ping\n\n")
      }
      exchange.response.write("data: last\n\n")
      assert.deepStrictEqual(yield* Fiber.join(received), [
        { id: "1", event: "tick", data: "a\nb" },
        { id: undefined, event: "message", data: "last" }
      ])
      assert.strictEqual(server.exchanges.length, 1, "heartbeats kept the connection")
    }).pipe(Effect.scoped)
  )

  it.live("sse framing: maxRecordSize bounds a whole event, even one that arrives in a single chunk", () =>
    Effect.gen(function* () {
      // Three data lines of 60 bytes: each line fits, the event (182 bytes) does not.
      const big = `data: ${"a".repeat(60)}\ndata: ${"b".repeat(60)}\ndata: ${"c".repeat(60)}\n\n`
      const body = `data: first\n\n${big}data: after\n\n`
      const server = yield* HttpServer.make({ contentType: "text/event-stream", reply: () => ({ body, end: true }) })
      const error = errorOf(
        yield* HttpStream.stream({ url: server.url, framing: "sse", maxRecordSize: 100, reconnect: false }).pipe(
          Stream.runCollect,
          Effect.exit
        )
      )
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.include(error.message, "maxRecordSize (100 bytes)")
      const name = `sse-skip-${Date.now()}`
      const skipped = yield* HttpStream.stream({
        url: server.url,
        framing: "sse",
        maxRecordSize: 100,
        onOversized: "skip",
        reconnect: false,
        name
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(
        skipped.map((e) => e.data),
        ["first", "after"]
      )
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("http-stream", name).decodeSkipped)).count, 1)
    }).pipe(Effect.scoped)
  )

  it.live('sse framing with onOversized "skip": no tail of an oversized event is ever delivered as an event', () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/event-stream" })
      const received = yield* HttpStream.stream({
        url: server.url,
        framing: "sse",
        maxRecordSize: 100,
        onOversized: "skip"
      }).pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      const exchange = yield* server.awaitExchanges(1)
      // One line of 500 bytes, split over chunks, then more fields of the same event, then a good event.
      exchange.response.write(`id: 7\ndata: ${"x".repeat(250)}`)
      yield* Effect.sleep("20 millis")
      exchange.response.write(`${"x".repeat(250)}\ndata: tail of the big one\nevent: big\n\n`)
      yield* Effect.sleep("20 millis")
      exchange.response.write("data: next\n\n: comment\n\nid: 9\ndata: last\n\n")
      const events = yield* Fiber.join(received)
      assert.deepStrictEqual(events, [
        { id: undefined, event: "message", data: "next" },
        { id: "9", event: "message", data: "last" }
      ])
    }).pipe(Effect.scoped)
  )

  it.live("a consumer stalled far longer than idleTimeout gets every record, in order, on one connection", () =>
    Effect.gen(function* () {
      const total = 100_000
      const body = Array.from({ length: total }, (_, i) => `${i}\n`).join("")
      const server = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body }) })
      const handle = yield* HttpStream.make({
        url: server.url,
        reconnect: fast,
        idleTimeout: "150 millis",
        overflow: { bufferSize: 512 }
      })
      yield* Wait.status(handle, "Connected")
      yield* Effect.sleep("1500 millis")
      let expected = 0
      yield* handle.messages.pipe(
        Stream.take(total),
        Stream.runForEach((line) =>
          Effect.sync(() => {
            if (Number(line) === expected) expected++
          })
        )
      )
      assert.strictEqual(expected, total, "every record, in order")
      assert.strictEqual(server.exchanges.length, 1, "no reconnect")
    }).pipe(Effect.scoped)
  )

  it.live("gzip bodies are decoded", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/plain",
        reply: () => ({ headers: { "content-encoding": "gzip" }, body: Zlib.gzipSync("a\nb\nc\n"), end: true })
      })
      assert.deepStrictEqual(yield* HttpStream.stream({ url: server.url }).pipe(Stream.runCollect), ["a", "b", "c"])
    }).pipe(Effect.scoped)
  )
})

describe("HttpStream statuses and faults", () => {
  it.live("401 is a non-retryable Auth error; 404 a non-retryable Protocol error with the status", () =>
    Effect.gen(function* () {
      let status = 401
      const server = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ status, end: true }) })
      const auth = errorOf(
        yield* HttpStream.stream({ url: server.url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(auth.reason._tag, "Auth")
      status = 404
      const missing = errorOf(
        yield* HttpStream.stream({ url: server.url, reconnect: fast }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(missing.reason._tag, "Protocol")
      assert.include(missing.message, "404")
      assert.isFalse(missing.isRetryable)
      assert.strictEqual(server.exchanges.length, 2, "one request each: no retry")
    }).pipe(Effect.scoped)
  )

  it.live("https:// against a plain server fails at once, not retried; an unknown host keeps its system code", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body: "x\n", end: true }) })
      const tls = errorOf(
        yield* HttpStream.stream({ url: server.url.replace("http:", "https:"), reconnect: fast }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.isFalse(tls.isRetryable)
      assert.include(tls.message, "does not speak TLS")
      const handle = yield* HttpStream.make({ url: "http://no-such-host.invalid/feed", reconnect: fast })
      const disconnected = yield* handle.events.pipe(
        Stream.filter((e): e is Lifecycle.Disconnected => e._tag === "Disconnected"),
        Stream.runHead
      )
      assert.strictEqual(disconnected._tag, "Some")
      const error = (disconnected as { value: Lifecycle.Disconnected }).value.error
      assert.strictEqual(ConnectorError.systemCode(error), "ENOTFOUND")
      assert.isTrue(error.isRetryable, "DNS may come back: retried unless the caller decides otherwise")
    }).pipe(Effect.scoped)
  )

  it.live("503 with Retry-After as an HTTP-date is retried no sooner than that date", () =>
    Effect.gen(function* () {
      let date = ""
      const server = yield* HttpServer.make({
        contentType: "text/plain",
        reply: (_request, index) =>
          index === 0 ? { status: 503, headers: { "retry-after": date }, end: true } : { body: "ok\n" }
      })
      // HTTP-dates have whole seconds: 2 s ahead is at least 1 s away.
      date = new Date(Date.now() + 2000).toUTCString()
      const start = Date.now()
      const out = yield* HttpStream.stream({ url: server.url, reconnect: fast }).pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(out, ["ok"])
      assert.isAtLeast(Date.now() - start, 950)
      assert.strictEqual(server.exchanges.length, 2)
    }).pipe(Effect.scoped)
  )

  it.live("503 with Retry-After is retried no sooner than it says", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "text/plain",
        reply: (_request, index) =>
          index === 0 ? { status: 503, headers: { "retry-after": "1" }, end: true } : { body: "ok\n" }
      })
      const handle = yield* HttpStream.make({ url: server.url, reconnect: fast })
      const disconnected = yield* handle.events.pipe(
        Stream.filter((e): e is Lifecycle.Disconnected => e._tag === "Disconnected"),
        Stream.runHead,
        Effect.forkChild({ startImmediately: true })
      )
      const start = Date.now()
      assert.deepStrictEqual(yield* handle.messages.pipe(Stream.take(1), Stream.runCollect), ["ok"])
      assert.isAtLeast(Date.now() - start, 950)
      const event = yield* Fiber.join(disconnected)
      assert.strictEqual(event._tag, "Some")
    }).pipe(Effect.scoped)
  )

  it.live("a wrong content type is a non-retryable Protocol error", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({ contentType: "text/html", reply: () => ({ body: "<p>", end: true }) })
      const error = errorOf(
        yield* HttpStream.stream({ url: server.url, framing: "sse", reconnect: fast }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.include(error.message, "text/html")
    }).pipe(Effect.scoped)
  )

  it.live("a black hole is detected by the idle timer; a truncated body reconnects", () =>
    Effect.gen(function* () {
      const { server, proxy, url } = yield* ndjsonFixture()
      const handle = yield* HttpStream.make<{ readonly n: number }>({
        url,
        framing: "ndjson",
        reconnect: fast,
        idleTimeout: "300 millis"
      })
      const errors: Array<string> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "Disconnected" && errors.push(e.error.reason._tag))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* server.awaitExchanges(1)
      // Connected: the response headers came through; from now on only the idle timer can notice a stall.
      yield* Wait.status(handle, "Connected")
      yield* proxy.blackhole
      yield* Wait.until(() => errors.includes("Timeout"), "the idle timer", 3000)
      yield* proxy.restore
      const second = yield* server.awaitExchanges(2)
      second.response.write('{"n":1}\n{"n":')
      yield* Effect.sleep("50 millis")
      second.response.socket?.destroy()
      yield* server.awaitExchanges(3)
      assert.include(errors, "Connect")
    }).pipe(Effect.scoped)
  )

  it.live("follow + resume: a body that ends is requested again from the last record; the Gap says resumed", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.make({
        contentType: "application/x-ndjson",
        reply: (request) => {
          const after = Number(new URL(request.url!, "http://x").searchParams.get("after") ?? 0)
          const body = [after + 1, after + 2].map((n) => `${JSON.stringify({ n })}\n`).join("")
          return { body, end: true }
        }
      })
      const handle = yield* HttpStream.make<{ readonly n: number }>({
        url: `${server.url}/log`,
        framing: "ndjson",
        follow: true,
        reconnect: fast,
        resume: (last) => ({ url: `${server.url}/log?after=${last?.n ?? 0}` })
      })
      const signals = yield* handle.signals.pipe(Stream.take(12), Stream.runCollect)
      const numbers = signals.flatMap((s) => (s._tag === "Message" ? [s.message.n] : []))
      assert.deepStrictEqual(numbers, [1, 2, 3, 4, 5, 6].slice(0, numbers.length))
      const gap = signals.find((s): s is Lifecycle.Gap => s._tag === "Gap")
      assert.strictEqual(gap?.delivery, "resumed")
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const cases: Array<[HttpStream.Options<unknown>, string]> = [
        [{ url: "ftp://x" }, "url"],
        [{ url: "http://127.0.0.1:1", framing: "csv" as "lines" }, "framing"],
        [{ url: "http://127.0.0.1:1", maxRecordSize: -1 }, "maxRecordSize"],
        [{ url: "http://127.0.0.1:1", idleTimeout: "soon" as never }, "idleTimeout"],
        [{ url: "http://127.0.0.1:1", method: "GET /" }, "method"]
      ]
      for (const [options, option] of cases) {
        const error = errorOf(yield* HttpStream.stream(options as never).pipe(Stream.runDrain, Effect.exit))
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as ConnectorError.Config).option, option)
      }
    })
  )

  it.live(
    "500 request/abort cycles leave no sockets or timers behind",
    () =>
      Effect.gen(function* () {
        const server = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body: "hello\n" }) })
        const baseline = Resources.snapshot()
        for (let i = 0; i < 500; i++) {
          const first = yield* HttpStream.stream({ url: server.url, reconnect: false }).pipe(Stream.runHead)
          assert.strictEqual(first._tag, "Some")
        }
        yield* Wait.until(() => Effect.runSync(server.open) === 0, "the server to see every request closed")
        yield* Resources.expectNoLeaks(baseline)
      }).pipe(Effect.scoped),
    // Hundreds of real connections: slow on a loaded 2-core machine, which is not what this test is about.
    120_000
  )
})
