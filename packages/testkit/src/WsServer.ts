/**
 * A scripted WebSocket server (`ws`) on loopback: accepts or rejects handshakes, sends what the test says, and
 * reports what it sees (connections, messages, closes, the send buffer of each socket).
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type WebSocket, WebSocketServer } from "ws"
import * as Wait from "./Wait.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly socket: WebSocket
  readonly request: Http.IncomingMessage
  /** Messages the client sent, as text. */
  readonly received: Array<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WsServer {
  readonly port: number
  /** `ws://127.0.0.1:port` */
  readonly url: string
  /** Connections accepted since the start, in order. */
  readonly connections: ReadonlyArray<Connection>
  /** Open connections now (the server-side sessions). */
  readonly open: Effect.Effect<number>
  /** Sends to every open connection. */
  readonly broadcast: (data: string | Buffer) => Effect.Effect<void>
  /** Waits (polling) until at least `n` connections were accepted. */
  readonly awaitConnections: (n: number, timeoutMs?: number) => Effect.Effect<Connection, Error>
}

/**
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** Decides each handshake: `undefined` accepts; a status rejects it with that HTTP status. */
  readonly handshake?: ((request: Http.IncomingMessage) => number | undefined) | undefined
  /** Called for every accepted connection. */
  readonly onConnection?: ((connection: Connection) => void) | undefined
  /** Server-side `ws` options passed through (e.g. `autoPong: false` for a server that ignores pings). */
  readonly autoPong?: boolean | undefined
}

/**
 * Starts a server in the current Scope; closing the Scope terminates every connection and the server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<WsServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const connections: Array<Connection> = []
    const server = yield* Effect.acquireRelease(
      Effect.callback<WebSocketServer, Error>((resume) => {
        const wss: WebSocketServer = new WebSocketServer({
          host: "127.0.0.1",
          port: 0,
          autoPong: options.autoPong ?? true,
          verifyClient:
            options.handshake === undefined
              ? undefined
              : (info, done) => {
                  const status = options.handshake!(info.req)
                  if (status === undefined) done(true)
                  else done(false, status)
                }
        })
        wss.once("error", (error) => resume(Effect.fail(error)))
        wss.once("listening", () => resume(Effect.succeed(wss)))
      }),
      (wss) =>
        Effect.callback<void>((resume) => {
          for (const client of wss.clients) client.terminate()
          wss.close(() => resume(Effect.void))
        })
    )
    server.on("connection", (socket, request) => {
      const connection: Connection = { socket, request, received: [] }
      socket.on("message", (data) => connection.received.push(String(data)))
      socket.on("error", () => {})
      connections.push(connection)
      options.onConnection?.(connection)
    })
    const port = (server.address() as { port: number }).port
    const open = Effect.sync(() => {
      let n = 0
      for (const client of server.clients)
        if (client.readyState === client.OPEN || client.readyState === client.CLOSING) n++
      return n
    })
    return {
      port,
      url: `ws://127.0.0.1:${port}`,
      connections,
      open,
      broadcast: (data) =>
        Effect.sync(() => {
          for (const client of server.clients) if (client.readyState === client.OPEN) client.send(data)
        }),
      awaitConnections: (n, timeoutMs) =>
        Effect.map(
          Wait.until(() => connections.length >= n, `${n} WebSocket connection(s)`, timeoutMs),
          () => connections[n - 1]
        )
    }
  })
