/**
 * The connector of docs/writing-a-connector.md: the lines of a TCP socket (node:net), as a scoped, bounded,
 * self-healing stream. Everything generic — reconnect, watchdog, lifecycle, overflow, metrics — is core's; this
 * file says only how to dial, listen, pause and classify errors. `LineSocket.test.ts` runs it against a real server.
 */
import * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { Connector, ConnectorError, type Driver } from "../src/index.ts"

const connector = "line-socket"

// 1. Options: the common ones plus what is specific to the source.
export interface Options extends Connector.CommonOptions<string> {
  readonly host?: string | undefined
  readonly port: number
}

// 2. Resolve them once: invalid ones fail at once with a Config reason naming the option.
const resolve = (options: Options) =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
      return yield* Effect.fail(ConnectorError.config(connector, "port", options.port, "a TCP port (1–65535)"))
    }
    const common = yield* Connector.resolve<string>(connector, options, {
      // A socket can pause: lossless by default. After pause() the chunk being split is finished (64 KiB of lines).
      overflow: { strategy: "suspend", bufferSize: 1024, hardCap: (size) => size + 65_536 },
      // No probe in this protocol: silence for 30 s is a dead connection.
      liveness: { interval: "30 seconds", timeout: "30 seconds" }
    })
    return { common, host: options.host ?? "127.0.0.1", port: options.port }
  })

// 3. The driver: dial in the connection's Scope, feed the session, register pause/resume.
const driver = (host: string, port: number): Driver.Driver<Net.Socket, string> => ({
  connector,
  connect: (session) =>
    Effect.gen(function* () {
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => Net.connect({ host, port })),
        (socket) => Effect.sync(() => socket.destroy())
      )
      // Errors and ends are reported to the session, never thrown from a callback.
      socket.on("error", (cause) => session.fail(ConnectorError.socketError(connector, cause)))
      socket.on("close", () =>
        session.fail(
          ConnectorError.make(connector, new ConnectorError.Closed({ message: "the server closed the socket" }))
        )
      )
      let partial = ""
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n")
        partial = lines.pop()!
        // push batches what one read delivers into one array; received bytes feed metrics and the watchdog.
        for (const line of lines) session.push(line, line.length + 1)
        session.flush()
      })
      session.flowControl({ pause: () => socket.pause(), resume: () => socket.resume() })
      // Connected once the socket is: a failure while dialing ends the attempt (core races it with the session).
      yield* Effect.callback<void>((resume) => {
        socket.once("connect", () => resume(Effect.void))
      })
      return socket
    })
})

// 4. The two entry points every connector exports.
export const make = (
  options: Options
): Effect.Effect<Connector.Handle<Net.Socket, string>, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.flatMap(resolve(options), ({ common, host, port }) => Connector.make(driver(host, port), common))

export const stream = (options: Options): Stream.Stream<string, ConnectorError.ConnectorError> =>
  Connector.stream(
    Effect.map(resolve(options), ({ common, host, port }) => ({ driver: driver(host, port), options: common }))
  )
