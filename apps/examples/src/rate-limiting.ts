/**
 * Emission rate limiting (the guide's pattern 1): a feed that sends far faster than the consumer wants, limited to
 * 20 messages a second with `Stream.throttle` (a token bucket: the first 20 at once, then one every 50 ms), while the connector's buffer keeps the latest 100 (`"sliding"`)
 * and counts what it let go. The guide's hand-made token bucket inside `asyncPush` is `Stream.throttle`; the
 * silent loss it risked is a counted drop (`stats.dropped`).
 */
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Stream } from "effect"
import { runWhenMain } from "./main.ts"

export const program = Effect.gen(function* () {
  // The embedded source: 5,000 messages as fast as the socket takes them.
  const server = yield* WsServer.make({
    onConnection: ({ socket }) => {
      for (let i = 1; i <= 5000; i++) socket.send(String(i))
    }
  })
  const handle = yield* WebSocket.make({ url: server.url, overflow: { strategy: "sliding", bufferSize: 100 } })
  const started = Date.now()
  const taken = yield* handle.messages.pipe(
    // The cost is per chunk: the number of messages in it.
    Stream.rechunk(1),
    Stream.throttle({ cost: (messages) => messages.length, units: 20, duration: "1 second", strategy: "shape" }),
    Stream.take(40),
    Stream.runCollect
  )
  const seconds = (Date.now() - started) / 1000
  const stats = yield* handle.stats
  return {
    taken: taken.length,
    // After the bucket's first 20: 20 more in about a second.
    seconds: Math.round(seconds * 10) / 10,
    // Nothing lost without a count: what was delivered, what waits, and what the buffer let go.
    delivered: stats.delivered,
    buffered: stats.depth,
    dropped: stats.dropped,
    newest: taken.at(-1)
  }
})

runWhenMain(import.meta.url, program)
