/**
 * Stream health monitoring (the guide's pattern 2): a connection's lifecycle — `Connected`, `Disconnected` with
 * its error, `Gap` with the downtime — followed on `handle.events`, turned into a health record, while the
 * built-in metrics count messages, reconnects and downtime. The guide kept its own Refs of emission times and
 * error counts; the connector publishes them. A fault proxy resets the connection mid-run.
 */

import * as FaultProxy from "@streamemit/testkit/FaultProxy"
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { Duration, Effect, Schedule, Stream } from "effect"
import { runWhenMain } from "./main.ts"

export const program = Effect.gen(function* () {
  const server = yield* WsServer.make({
    onConnection: ({ socket }) => {
      const timer = setInterval(() => socket.send("tick"), 10)
      socket.once("close", () => clearInterval(timer))
    }
  })
  const proxy = yield* FaultProxy.make({ target: { port: server.port } })
  const handle = yield* WebSocket.make({
    url: `ws://${proxy.host}:${proxy.port}`,
    reconnect: Schedule.spaced("100 millis")
  })
  const health: Array<string> = []
  yield* handle.events.pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => {
        if (event._tag === "Connected") health.push(`up (attempt ${event.attempt})`)
        else if (event._tag === "Disconnected") health.push(`down: ${event.error.reason._tag}`)
        else if (event._tag === "Gap")
          health.push(`back after ${Duration.toMillis(event.downtime)} ms (${event.delivery})`)
      })
    ),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  yield* handle.messages.pipe(Stream.take(10), Stream.runDrain)
  // A fault: the connection is reset under the consumer.
  yield* proxy.reset
  yield* handle.messages.pipe(Stream.take(10), Stream.runDrain)
  yield* Effect.sleep("50 millis")
  const stats = yield* handle.stats
  return { health, reconnects: stats.reconnects, delivered: stats.delivered }
})

runWhenMain(import.meta.url, program)
