/**
 * The example connector of docs/writing-a-connector.md, against a real TCP server on loopback: order, a reconnect
 * with its Gap, lossless backpressure under a slow consumer, a Config error naming the option.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule, Stream } from "effect"
import * as LineSocket from "./LineSocket.ts"

/** A TCP server whose sockets the test writes to; closed with the Scope. */
const server = Effect.acquireRelease(
  Effect.callback<{ readonly server: Net.Server; readonly sockets: Array<Net.Socket>; readonly port: number }>(
    (resume) => {
      const sockets: Array<Net.Socket> = []
      const server = Net.createServer((socket) => {
        socket.on("error", () => {})
        sockets.push(socket)
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ server, sockets, port: (server.address() as Net.AddressInfo).port }))
      )
    }
  ),
  ({ server, sockets }) =>
    Effect.callback<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

const until = (predicate: () => boolean): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    while (!predicate()) yield* Effect.sleep("5 millis")
  }).pipe(Effect.timeout("5 seconds"))

describe("the example connector (docs/writing-a-connector.md)", () => {
  it.live("lines in order; after the server drops the socket, a reconnect and a Gap, then the new lines", () =>
    Effect.gen(function* () {
      const tcp = yield* server
      const handle = yield* LineSocket.make({ port: tcp.port, reconnect: Schedule.spaced("20 millis") })
      const signals = yield* handle.signals.pipe(
        Stream.filter((s) => s._tag !== "Connecting"),
        Stream.take(7),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* until(() => tcp.sockets.length === 1)
      tcp.sockets[0]!.write("one\ntwo\nthr")
      tcp.sockets[0]!.write("ee\n")
      yield* Effect.sleep("50 millis")
      tcp.sockets[0]!.destroy()
      yield* until(() => tcp.sockets.length === 2)
      yield* Effect.sleep("50 millis")
      tcp.sockets[1]!.write("four\n")
      const tags = yield* Fiber.join(signals)
      assert.deepStrictEqual(
        tags.map((signal) => (signal._tag === "Message" ? signal.message : signal._tag)),
        ["Connected", "one", "two", "three", "Disconnected", "Connected", "Gap"]
      )
      const next = yield* handle.messages.pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(next, ["four"])
    }).pipe(Effect.scoped)
  )

  it.live("a slow consumer pauses the socket: 50,000 lines, none lost, the buffer bounded", () =>
    Effect.gen(function* () {
      const tcp = yield* server
      const handle = yield* LineSocket.make({ port: tcp.port, overflow: { bufferSize: 64 } })
      yield* until(() => tcp.sockets.length === 1)
      const total = 50_000
      tcp.sockets[0]!.write(Array.from({ length: total }, (_, i) => `${i}\n`).join(""))
      let expected = 0
      let deepest = 0
      yield* handle.messages.pipe(
        Stream.take(total),
        Stream.mapEffect((line) =>
          Effect.map(handle.stats, (stats) => {
            deepest = Math.max(deepest, stats.depth)
            if (Number(line) === expected) expected++
          })
        ),
        Stream.runDrain
      )
      assert.strictEqual(expected, total)
      assert.isAbove((yield* handle.stats).pauses, 0)
      assert.isAtMost(deepest, 64 + 65_536)
    }).pipe(Effect.scoped)
  )

  it.effect("an invalid option fails at once with a Config reason naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stream.runDrain(LineSocket.stream({ port: 70_000 })))
      assert.strictEqual(error.reason._tag, "Config")
      assert.include(error.message, '"port"')
    })
  )
})
