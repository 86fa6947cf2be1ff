import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { FaultProxy, Resources } from "../src/index.ts"

/** A real echo server on loopback. */
const echoServer = Effect.acquireRelease(
  Effect.callback<{ readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>((resume) => {
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => {})
      socket.pipe(socket)
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
  }),
  ({ server, sockets }) =>
    Effect.callback<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ server }) => server))

const connect = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Sends `text` and resolves with what comes back within `ms` (empty if nothing). */
const roundTrip = (socket: Net.Socket, text: string, ms = 300) =>
  Effect.promise(
    () =>
      new Promise<{ readonly data: string; readonly elapsed: number }>((resolve) => {
        const start = Date.now()
        let data = ""
        const onData = (chunk: Buffer) => {
          data += String(chunk)
          if (data.length >= text.length) done()
        }
        const timer = setTimeout(() => done(), ms)
        const done = () => {
          clearTimeout(timer)
          socket.off("data", onData)
          resolve({ data, elapsed: Date.now() - start })
        }
        socket.on("data", onData)
        socket.write(text)
      })
  )

describe("FaultProxy", () => {
  it.live("forwards both ways and counts connections", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
      const socket = yield* connect(proxy.port)
      assert.strictEqual((yield* roundTrip(socket, "hello")).data, "hello")
      assert.deepStrictEqual(yield* proxy.stats, { accepted: 1, open: 1 })
      socket.destroy()
      yield* proxy.waitFor((s) => s.open === 0)
    }).pipe(Effect.scoped)
  )

  it.live("reset destroys live connections with an RST", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
      const socket = yield* connect(proxy.port)
      const error = Effect.promise(
        () => new Promise<NodeJS.ErrnoException>((resolve) => socket.once("error", (e) => resolve(e)))
      )
      yield* proxy.reset
      assert.strictEqual((yield* error).code, "ECONNRESET")
      assert.strictEqual((yield* proxy.stats).open, 0)
      // New connections are still accepted.
      const again = yield* connect(proxy.port)
      assert.strictEqual((yield* roundTrip(again, "again")).data, "again")
    }).pipe(Effect.scoped)
  )

  it.live("blackhole keeps sockets open and forwards nothing; restore forwards again", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
      const socket = yield* connect(proxy.port)
      yield* proxy.blackhole
      assert.strictEqual((yield* roundTrip(socket, "lost", 200)).data, "")
      assert.isFalse(socket.destroyed)
      assert.strictEqual((yield* proxy.stats).open, 1)
      yield* proxy.restore
      assert.strictEqual((yield* roundTrip(socket, "back")).data, "back")
    }).pipe(Effect.scoped)
  )

  it.live("latency delays every chunk", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
      const socket = yield* connect(proxy.port)
      yield* proxy.latency(100)
      const slow = yield* roundTrip(socket, "slow", 1000)
      assert.strictEqual(slow.data, "slow")
      assert.isAtLeast(slow.elapsed, 190, "100 ms each way")
    }).pipe(Effect.scoped)
  )

  it.live("refuse makes new connections fail with ECONNREFUSED; restore accepts on the same port", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
      yield* proxy.refuse
      const refused = yield* Effect.flip(Effect.scoped(connect(proxy.port)))
      assert.strictEqual((refused as NodeJS.ErrnoException).code, "ECONNREFUSED")
      yield* proxy.restore
      const socket = yield* connect(proxy.port)
      assert.strictEqual((yield* roundTrip(socket, "open")).data, "open")
    }).pipe(Effect.scoped)
  )

  it.live("closing the scope closes every socket and the listener", () =>
    Effect.gen(function* () {
      const baseline = Resources.snapshot()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* echoServer
          const proxy = yield* FaultProxy.make({ target: { port: (server.address() as Net.AddressInfo).port } })
          const socket = yield* connect(proxy.port)
          assert.strictEqual((yield* roundTrip(socket, "x")).data, "x")
        })
      )
      yield* Resources.expectNoLeaks(baseline)
    })
  )
})
