/**
 * An application-level resume across restarts: the server sends what comes after the position the client asks
 * for in its first message; the client asks for the position saved by its last run.
 */
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Child, Wait, WsServer } from "@streamemit/testkit"
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

  it.live(
    "kill -9 between commits, messages while down, restart: nothing lost, duplicates ≤ the unsaved batch",
    () =>
      Effect.gen(function* () {
        // The feed keeps a log: "after N" gets what exists after N, then everything new as it comes.
        const log: Array<string> = []
        const subscribers = new Set<(message: string) => void>()
        const server = yield* WsServer.make({
          onConnection: (connection) =>
            connection.socket.once("message", (data) => {
              const after = Number(String(data).replace("after ", ""))
              for (const message of log.slice(after)) connection.socket.send(message)
              const send = (message: string) => connection.socket.send(message)
              subscribers.add(send)
              connection.socket.once("close", () => subscribers.delete(send))
            })
        })
        const publish = (count: number) =>
          Effect.sync(() => {
            for (let i = 0; i < count; i++) {
              const message = `seq:${log.length + 1}`
              log.push(message)
              for (const send of subscribers) send(message)
            }
          })
        const dir = yield* Child.tempDir("streamemit-ws-ckpt")
        const [file, results] = [Path.join(dir, "ckpt.json"), Path.join(dir, "results")]
        const lines = () => Child.lines(results)
        const script = new URL("./checkpoint-process.ts", import.meta.url).pathname
        const start = Child.ready(script, [server.url, file, results])
        yield* publish(60)
        const first = yield* start
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(lines(), (list) => list.length >= 35)),
          "the first run at work",
          10_000
        )
        first.kill("SIGKILL")
        yield* publish(30)
        yield* start
        yield* Wait.until(
          () =>
            Effect.runPromise(
              Effect.map(lines(), (list) => new Set(list.filter((l) => l.startsWith("seq:"))).size === 90)
            ),
          "every message after the restart",
          10_000
        )
        const all = yield* lines()
        const seen = all.filter((l) => l.startsWith("seq:"))
        assert.strictEqual(new Set(seen).size, 90, "every message, none lost")
        // One batch of 10 unsaved, and those done while its save was being written.
        assert.isAtMost(seen.length - 90, 20, `duplicates: ${seen.length - 90}`)
        assert.include(all, "gap")
      }).pipe(Effect.scoped),
    30_000
  )
})
