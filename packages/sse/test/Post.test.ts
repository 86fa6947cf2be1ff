/**
 * SSE as streamed model output uses it: POST with a JSON body, drops mid-answer resumed with `Last-Event-ID`,
 * `[DONE]` ending the stream, the body of a refused request in the error.
 */
import { assert, describe, it } from "@effect/vitest"
import { Expect, McpServer, ModelServer } from "@streamemit/testkit"
import { Effect, Schedule, Stream } from "effect"
import { Sse } from "../src/index.ts"

const tokens = Array.from({ length: 20 }, (_, i) => `t${i + 1}`)
const fast = Schedule.spaced("20 millis")
const done = (event: Sse.Event) => event.data === "[DONE]"

describe("Sse over POST", () => {
  it.live("drops mid-answer are resumed with Last-Event-ID and the same body: every token once, in order", () =>
    Effect.gen(function* () {
      const server = yield* ModelServer.make({ tokens, drops: [5, 7] })
      let attempts = 0
      const answer = yield* Sse.stream({
        url: server.url,
        method: "POST",
        // Evaluated per attempt: a fresh request id each time, the same prompt.
        body: Effect.sync(() => ({ prompt: "count to twenty", requestId: ++attempts })),
        endOn: done,
        reconnect: fast
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(
        answer.map((e) => (JSON.parse(e.data) as { token: string }).token),
        tokens
      )
      assert.deepStrictEqual(
        answer.map((e) => e.id),
        tokens.map((_, i) => String(i + 1))
      )
      const requests = server.requests()
      assert.deepStrictEqual(
        requests.map((r) => [r.method, r.lastEventId]),
        [
          ["POST", undefined],
          ["POST", "5"],
          ["POST", "12"]
        ]
      )
      assert.deepStrictEqual(
        requests.map((r) => JSON.parse(r.body)),
        [1, 2, 3].map((requestId) => ({ prompt: "count to twenty", requestId }))
      )
    })
  )

  it.live("the handle shows the last event id; [DONE] ends the stream without asking again", () =>
    Effect.gen(function* () {
      const server = yield* ModelServer.make({ tokens: ["a", "b", "c"] })
      const handle = yield* Sse.make({ url: server.url, method: "POST", body: { prompt: "abc" }, endOn: done })
      const events = yield* handle.messages.pipe(Stream.runCollect)
      assert.strictEqual(events.length, 3)
      assert.strictEqual(yield* handle.lastEventId, "3")
      assert.strictEqual(server.requests().length, 1)
      assert.strictEqual((yield* handle.status)._tag, "Closed")
    }).pipe(Effect.scoped)
  )

  it.live('onClose: "end" ends the stream when the server closes a complete answer (no [DONE])', () =>
    Effect.gen(function* () {
      const server = yield* ModelServer.make({ tokens: ["a", "b"], done: false })
      const events = yield* Sse.stream({
        url: server.url,
        method: "POST",
        body: { prompt: "ab" },
        onClose: "end"
      }).pipe(Stream.runCollect)
      assert.strictEqual(events.length, 2)
      assert.strictEqual(server.requests().length, 1)
    })
  )

  it.live("a 400 is a typed error with the status and the body that says what was wrong", () =>
    Effect.gen(function* () {
      const server = yield* ModelServer.make({ tokens })
      const exit = yield* Effect.exit(
        Sse.stream({ url: server.url, method: "POST", body: { wrong: true } }).pipe(Stream.runCollect)
      )
      const error = Expect.connectorError(exit)
      assert.strictEqual(error.reason._tag, "Protocol")
      assert.strictEqual(error.reason.status, 400)
      assert.include(error.reason.body, "prompt is required")
      assert.include(error.message, "prompt is required")
      // A GET to a POST-only endpoint: the 405 and its body.
      const get = Expect.connectorError(yield* Effect.exit(Sse.stream({ url: server.url }).pipe(Stream.runCollect)))
      assert.strictEqual(get.reason.status, 405)
      assert.include(get.reason.body, "POST only")
    })
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      for (const [options, option] of [
        [{ url: "http://x", method: "PO ST" }, "method"],
        [{ url: "http://x", endOn: "[DONE]" }, "endOn"],
        [{ url: "http://x", onClose: "stop" }, "onClose"]
      ] as const) {
        const error = Expect.connectorError(yield* Effect.exit(Sse.make(options as unknown as Sse.Options<string>)))
        assert.strictEqual(error.reason._tag, "Config")
        assert.strictEqual((error.reason as { option?: string }).option, option)
      }
    }).pipe(Effect.scoped)
  )

  it.live(
    "MCP Streamable HTTP: a tools/call stream dropped mid-way resumes with GET + Last-Event-ID, response last",
    () =>
      Effect.gen(function* () {
        const server = yield* McpServer.make({ steps: 6, dropAfter: 3 })
        // initialize: a plain JSON exchange that hands out the session.
        const init = yield* Effect.promise(() =>
          fetch(server.url, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} })
          })
        )
        const session = init.headers.get("mcp-session-id")!
        assert.isString(session)
        const messages = yield* Sse.stream({
          url: server.url,
          method: "POST",
          headers: { "mcp-session-id": session, accept: "application/json, text/event-stream" },
          body: { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "count" } },
          resumeMethod: "GET",
          // The response to our request ends it, delivered.
          endAfter: (event) => (JSON.parse(event.data) as { id?: number }).id === 2,
          reconnect: fast
        }).pipe(Stream.runCollect)
        const parsed = messages.map((m) => JSON.parse(m.data) as { readonly params?: { readonly progress: number } })
        assert.deepStrictEqual(
          parsed.slice(0, 6).map((m) => m.params?.progress),
          [1, 2, 3, 4, 5, 6]
        )
        assert.deepStrictEqual(parsed[6] as unknown, {
          jsonrpc: "2.0",
          id: 2,
          result: { content: [{ type: "text", text: "done" }] }
        })
        assert.strictEqual(parsed.length, 7, "every message once")
        assert.deepStrictEqual(
          server.requests().map((r) => [r.method, r.sessionId === session, r.lastEventId]),
          [
            ["POST", false, undefined],
            ["POST", true, undefined],
            ["GET", true, "3"]
          ]
        )
      })
  )
})
