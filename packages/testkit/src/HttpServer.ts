/**
 * A scripted streaming HTTP server (`node:http`) on loopback: each request gets the status and headers the test
 * chooses and a response the test writes into, chunk by chunk, for NDJSON, line and SSE sources.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Wait from "./Wait.ts"

/**
 * One request and its open response.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exchange {
  readonly request: Http.IncomingMessage
  readonly response: Http.ServerResponse
  /** Whether the client went away (or the response ended). */
  readonly closed: () => boolean
}

/**
 * What to answer: a status and headers; the body is written by the test (or by `body`).
 *
 * @since 0.1.0
 * @category options
 */
export interface Reply {
  readonly status?: number | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Written at once; `end: true` ends the response after it. */
  readonly body?: string | Buffer | undefined
  readonly end?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpServer {
  readonly port: number
  readonly url: string
  readonly exchanges: ReadonlyArray<Exchange>
  /** Responses still open (the server-side sessions). */
  readonly open: Effect.Effect<number>
  /** Waits until at least `n` requests arrived; returns the `n`th. */
  readonly awaitExchanges: (n: number, timeoutMs?: number) => Effect.Effect<Exchange, Error>
  /** Writes to the newest open response. */
  readonly write: (chunk: string | Buffer) => Effect.Effect<void, Error>
}

/**
 * Starts a server in the current Scope; `reply` decides each request's status and headers (default: 200, the
 * given `contentType`). Closing the Scope destroys every connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly contentType: string
  readonly reply?: ((request: Http.IncomingMessage, index: number) => Reply | undefined) | undefined
}): Effect.Effect<HttpServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const exchanges: Array<Exchange> = []
    const sockets = new Set<import("node:net").Socket>()
    const server = yield* Effect.acquireRelease(
      Effect.callback<Http.Server, Error>((resume) => {
        const server = Http.createServer((request, response) => {
          const reply = options.reply?.(request, exchanges.length) ?? {}
          let closed = false
          response.on("close", () => {
            closed = true
          })
          exchanges.push({ request, response, closed: () => closed || response.writableEnded })
          response.writeHead(reply.status ?? 200, {
            "content-type": options.contentType,
            "cache-control": "no-store",
            ...reply.headers
          })
          response.flushHeaders()
          if (reply.body !== undefined) response.write(reply.body)
          if (reply.end === true) response.end()
        })
        server.on("connection", (socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
        })
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const port = (server.address() as { port: number }).port
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      exchanges,
      open: Effect.sync(() => exchanges.filter((e) => !e.closed()).length),
      awaitExchanges: (n, timeoutMs) =>
        Effect.map(
          Wait.until(() => exchanges.length >= n, `${n} HTTP request(s)`, timeoutMs),
          () => exchanges[n - 1]
        ),
      write: (chunk) =>
        Effect.suspend(() => {
          const open = exchanges.filter((e) => !e.closed()).at(-1)
          if (open === undefined) return Effect.fail(new Error("no open response to write to"))
          open.response.write(chunk)
          return Effect.void
        })
    }
  })
