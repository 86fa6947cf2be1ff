/**
 * A scripted Server-Sent Events server on loopback that keeps a log of numbered events and replays, on every
 * request, the events after the request's `Last-Event-ID`: the server a resuming client needs for "nothing lost,
 * nothing duplicated" tests.
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as HttpServer from "./HttpServer.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface SseServer {
  readonly port: number
  readonly url: string
  /** The underlying exchanges, in order of arrival. */
  readonly http: HttpServer.HttpServer
  /** The `Last-Event-ID` header of each request, in order (`undefined` when absent). */
  readonly lastEventIds: () => ReadonlyArray<string | undefined>
  /** Appends events to the log (ids continue from the last) and sends them to every open response. */
  readonly publish: (
    events: ReadonlyArray<{ readonly data: string; readonly event?: string | undefined }>
  ) => Effect.Effect<void>
  /** Sends raw text to every open response (comments, malformed input, `retry:` …). */
  readonly raw: (text: string) => Effect.Effect<void>
}

/**
 * The wire form of one event.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (event: {
  readonly id?: string | undefined
  readonly event?: string | undefined
  readonly data: string
}) =>
  `${event.id === undefined ? "" : `id: ${event.id}\n`}${event.event === undefined ? "" : `event: ${event.event}\n`}${event.data
    .split("\n")
    .map((line) => `data: ${line}\n`)
    .join("")}\n`

/**
 * Starts the server in the current Scope. `reply` may answer a request itself (a status, a wrong type, …);
 * otherwise it gets `200 text/event-stream`, the `retry:` given, and the replay after its `Last-Event-ID`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: {
    readonly retry?: number | undefined
    readonly reply?: ((request: Http.IncomingMessage, index: number) => HttpServer.Reply | undefined) | undefined
  } = {}
): Effect.Effect<SseServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const log: Array<string> = []
    const lastEventIds: Array<string | undefined> = []
    const http = yield* HttpServer.make({
      contentType: "text/event-stream",
      reply: (request, index) => {
        const header = request.headers["last-event-id"]
        const lastId = typeof header === "string" ? header : undefined
        lastEventIds.push(lastId)
        const custom = options.reply?.(request, index)
        if (custom !== undefined) return custom
        const from = lastId === undefined ? 0 : Number(lastId)
        const retry = options.retry === undefined ? "" : `retry: ${options.retry}\n\n`
        return { body: `${retry}: hello\n\n${log.slice(Number.isInteger(from) ? from : 0).join("")}` }
      }
    })
    const broadcast = (text: string) => {
      for (const exchange of http.exchanges) if (!exchange.closed()) exchange.response.write(text)
    }
    return {
      port: http.port,
      url: http.url,
      http,
      lastEventIds: () => lastEventIds,
      publish: (events) =>
        Effect.sync(() => {
          let text = ""
          for (const event of events) {
            const wire = encode({ id: String(log.length + 1), event: event.event, data: event.data })
            log.push(wire)
            text += wire
          }
          broadcast(text)
        }),
      raw: (text) => Effect.sync(() => broadcast(text))
    }
  })
