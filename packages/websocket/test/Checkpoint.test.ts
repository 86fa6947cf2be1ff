/**
 * An application-level resume across restarts: the server sends what comes after the position the client asks
 * for in its first message; the client asks for the position saved by its last run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, Delivery } from "@streamemit/core"
import { WsServer } from "@streamemit/testkit"
import { Effect, Stream } from "effect"
import { WebSocket } from "../src/index.ts"

describe("WebSocket.checkpointed", () => {
  it.live("onOpen gets the saved cursor on start: the second run continues after the last message done", () =>
    Effect.gen(function* () {
      // "after N" → messages N+1 … 30, as "seq:<n>".
      const server = yield* WsServer.make({
        onConnection: (connection) =>
          connection.socket.once("message", (data) => {
            const after = Number(String(data).replace("after ", ""))
            for (let n = after + 1; n <= 30; n++) connection.socket.send(`seq:${n}`)
          })
      })
      const run = (take: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const { deliveries } = yield* WebSocket.checkpointed({
              url: server.url,
              checkpoint: { key: "feed", every: 3, cursorOf: (message: string) => message.split(":")[1] },
              onOpen: (socket, cursor) => socket.send(`after ${cursor ?? 0}`)
            })
            const seen: Array<string> = []
            yield* Delivery.process(deliveries.pipe(Stream.take(take)), (message) =>
              Effect.sync(() => seen.push(message))
            )
            return seen
          })
        )
      assert.deepStrictEqual(
        yield* run(7),
        Array.from({ length: 7 }, (_, i) => `seq:${i + 1}`)
      )
      assert.deepStrictEqual(
        yield* run(4),
        Array.from({ length: 4 }, (_, i) => `seq:${i + 8}`)
      )
      assert.deepStrictEqual(
        server.connections.map((c) => c.received[0]),
        ["after 0", "after 7"]
      )
    }).pipe(Effect.provide(Checkpoint.layerMemory), Effect.scoped)
  )
})
