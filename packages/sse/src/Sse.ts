/**
 * Server-Sent Events as a scoped, bounded, resumable stream, driving the `eventsource` package: one
 * `EventSource` per connection attempt, fed by a `fetch` of ours that adds the per-attempt headers and
 * `Last-Event-ID`, tells HTTP errors apart, counts bytes for the idle timer, watches `retry:` and pauses the body
 * while the consumer is behind. Reconnect, idle timer, lifecycle and metrics are core's: the `EventSource` is
 * closed on its first error instead of reconnecting on its own.
 *
 * Over 500 lines on purpose: the options (GET and POST, resumption, `endOn`/`endAfter`) are documented here, and the
 * `fetch` we give `eventsource` is one connection's story (request, status, pause, `retry:`); splitting it would
 * scatter that story. A quarter of the file is docs.
 *
 * @since 0.1.0
 */
import { Checkpoint, Connector, ConnectorError, Decode, type Delivery, type Driver, Http } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { EventSource, type FetchLikeResponse } from "eventsource"
import { Agent, fetch } from "undici"
import { retryScanner } from "./internal/retry.ts"

const connector = "sse"

/**
 * One dispatcher for every connection of the process, with keep-alive off (`pipelining: 0`): a stream's socket
 * closes when its stream ends or is aborted, so none outlives its scope, and no pool is built per connection (a
 * pool each cost ~40 KB per idle SSE stream). undici's own timeouts are off: the idle timer is core's, and must
 * be what ends a quiet stream.
 */
const dispatcher = new Agent({ bodyTimeout: 0, headersTimeout: 0, pipelining: 0 })

/**
 * One event — core's `Http.SseEvent`, the same type http-stream's `"sse"` framing delivers. `id` is the event's last
 * event ID (the spec's: an event without an `id:` field keeps the previous one); `data` is the text, or the decoded
 * value when a `schema` is given.
 *
 * @since 0.1.0
 * @category models
 */
export type Event<A = string> = Http.SseEvent<A>

/**
 * @since 0.1.0
 * @category options
 */
export interface Options<A> extends Omit<Connector.CommonOptions<Event<A>>, "liveness"> {
  /** `http://` or `https://` URL; an Effect is evaluated on every attempt. */
  readonly url: Connector.PerAttempt<string | URL>
  /** Request headers; values may be `Redacted`; an Effect is evaluated on every attempt (fresh tokens). */
  readonly headers?: Connector.PerAttempt<Http.Headers> | undefined
  /** Default `"GET"`; `"POST"` for streamed model output and MCP. */
  readonly method?: string | undefined
  /**
   * The request body, sent again with every reconnect (with `Last-Event-ID`): a string or bytes as they are, any
   * other value as JSON (with `content-type: application/json` unless a header sets it); an Effect is evaluated on
   * every attempt (a fresh token, a fresh request id).
   */
  readonly body?: Connector.PerAttempt<unknown> | undefined
  /**
   * An event that ends the stream normally, not delivered (a model's `data: [DONE]`): tested on the raw event,
   * before any `schema`.
   */
  readonly endOn?: ((event: Event<string>) => boolean) | undefined
  /** An event that ends the stream normally after it is delivered (MCP: the response to the request). */
  readonly endAfter?: ((event: Event<string>) => boolean) | undefined
  /**
   * How a dropped stream is asked again, with `Last-Event-ID`: the same request (`"same"`, the default: a model API
   * takes the prompt again) or a `GET` without a body (`"GET"`: MCP's Streamable HTTP resumes that way).
   */
  readonly resumeMethod?: "same" | "GET" | undefined
  /**
   * When the server closes the stream without an error: `"reconnect"` (the SSE way: ask again with
   * `Last-Event-ID`, the default) or `"end"` (a complete answer: the stream ends).
   */
  readonly onClose?: "reconnect" | "end" | undefined
  /** Event types to deliver; default: all of them. */
  readonly events?: ReadonlyArray<string> | undefined
  /**
   * Sent as `Last-Event-ID` on the first request (where to start); later requests send the last id seen. Ids go
   * on the wire as UTF-8, as the spec says (a server reading the header as Latin-1 decodes its bytes as UTF-8).
   */
  readonly lastEventId?: string | undefined
  /**
   * Whether the server replays what came after `Last-Event-ID`, as the spec asks of it. `true` (default): a
   * reconnect with an id opens with `Gap { delivery: "resumed" }`. `false` for a server that does not (the id is
   * still sent): the Gap says `possible-loss`, since SSE gives a client no way to tell.
   */
  readonly serverReplays?: boolean | undefined
  /** No byte for this long (`: ping` comments count) → stalled → reconnect. Default 45 s; `false` turns it off. */
  readonly idleTimeout?: Duration.Input | false | undefined
  /** Largest event being assembled, in bytes; larger is a non-retryable `Protocol` error. Default 1 MiB. */
  readonly maxEventSize?: number | undefined
  /** Decode `data` as JSON with this Schema. */
  readonly schema?: Schema.Decoder<A> | undefined
  /** A `data` the Schema rejects fails the stream (`Decode`) or is skipped and counted. Default `"fail"`. */
  readonly onDecodeError?: Decode.OnDecodeError | undefined
}

/**
 * What `connection` shows of the live connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly status: number
  readonly url: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Handle<A = string> extends Connector.Handle<Connection, Event<A>> {
  /** The id of the last event delivered (or the starting one): what a reconnect sends as `Last-Event-ID`. */
  readonly lastEventId: Effect.Effect<string | undefined>
}

interface Resolved<A> {
  readonly common: Connector.Resolved<Event<A>>
  readonly url: Effect.Effect<string, ConnectorError.ConnectorError>
  readonly headers: Effect.Effect<Record<string, string>, ConnectorError.ConnectorError>
  readonly method: string
  readonly body: Effect.Effect<unknown, ConnectorError.ConnectorError> | undefined
  readonly endOn: ((event: Event<string>) => boolean) | undefined
  readonly endAfter: ((event: Event<string>) => boolean) | undefined
  readonly resumeWithGet: boolean
  readonly endOnClose: boolean
  readonly events: ReadonlySet<string> | undefined
  readonly lastEventId: string | undefined
  readonly serverReplays: boolean
  readonly maxEventSize: number
  readonly schema: Schema.Decoder<A> | undefined
  readonly onDecodeError: Decode.OnDecodeError
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const resolve = <A>(options: Options<A>): Effect.Effect<Resolved<A>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const common = yield* Connector.resolveBody<Event<A>>(connector, options, "45 seconds")
    const url = yield* Http.urlOption(connector, options.url, ["http:", "https:"])
    const events = options.events
    if (
      events !== undefined &&
      (!Array.isArray(events) || events.length === 0 || !events.every((e) => typeof e === "string" && e !== ""))
    ) {
      return yield* Effect.fail(config("events", events, "a non-empty array of event types"))
    }
    const lastEventId = options.lastEventId
    if (lastEventId !== undefined && (typeof lastEventId !== "string" || /[\0\r\n]/.test(lastEventId))) {
      return yield* Effect.fail(config("lastEventId", lastEventId, "a string without NUL, CR or LF"))
    }
    const maxEventSize = options.maxEventSize ?? 1024 * 1024
    if (!Number.isInteger(maxEventSize) || maxEventSize < 1) {
      return yield* Effect.fail(config("maxEventSize", maxEventSize, "a positive integer (bytes)"))
    }
    const onDecodeError = yield* Connector.failOrSkip(connector, "onDecodeError", options.onDecodeError)
    const method = options.method ?? "GET"
    if (typeof method !== "string" || !/^[A-Za-z]+$/.test(method)) {
      return yield* Effect.fail(config("method", method, "an HTTP method"))
    }
    if (options.endOn !== undefined && typeof options.endOn !== "function") {
      return yield* Effect.fail(config("endOn", options.endOn, "a function of the event"))
    }
    if (options.endAfter !== undefined && typeof options.endAfter !== "function") {
      return yield* Effect.fail(config("endAfter", options.endAfter, "a function of the event"))
    }
    const resumeMethod = options.resumeMethod ?? "same"
    if (resumeMethod !== "same" && resumeMethod !== "GET") {
      return yield* Effect.fail(config("resumeMethod", resumeMethod, '"same" or "GET"'))
    }
    const onClose = options.onClose ?? "reconnect"
    if (onClose !== "reconnect" && onClose !== "end") {
      return yield* Effect.fail(config("onClose", onClose, '"reconnect" or "end"'))
    }
    const serverReplays = options.serverReplays ?? true
    if (typeof serverReplays !== "boolean") {
      return yield* Effect.fail(config("serverReplays", serverReplays, "a boolean"))
    }
    const body = options.body
    return {
      common,
      url,
      headers: Http.headersOption(options.headers),
      method: method.toUpperCase(),
      body:
        body === undefined
          ? undefined
          : Effect.isEffect(body)
            ? (body as Effect.Effect<unknown, ConnectorError.ConnectorError>)
            : Effect.succeed(body),
      endOn: options.endOn,
      endAfter: options.endAfter,
      resumeWithGet: resumeMethod === "GET",
      endOnClose: onClose === "end",
      events: events === undefined ? undefined : new Set(events),
      lastEventId: lastEventId === "" ? undefined : lastEventId,
      serverReplays,
      maxEventSize,
      schema: options.schema,
      onDecodeError
    }
  })

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

const statusError = (
  status: number,
  retryAfter: string | null,
  session: Driver.Session<never>,
  body?: string | undefined
) => Http.statusError(connector, status, retryAfter, session, `HTTP ${status}`, body)

const fetchError = (cause: unknown) => Http.fetchError(connector, cause)

/** What a handle shows of its driver: the last event id. */
interface State {
  lastEventId: string | undefined
}

/** A request body as it goes on the wire, and the content type it implies. */
const encodeBody = (body: unknown): { readonly bytes: string | Uint8Array; readonly json: boolean } =>
  typeof body === "string" || body instanceof Uint8Array
    ? { bytes: body, json: false }
    : { bytes: JSON.stringify(body), json: true }

/**
 * Every event goes through `dispatchEvent`: named events too, which `EventSource` hands only to listeners
 * registered for their type. One class for every connection (a class per connection cost about 3 KB each).
 */
class Source extends EventSource {
  handler: ((event: globalThis.Event) => void) | undefined
  override dispatchEvent(event: globalThis.Event): boolean {
    this.handler?.(event)
    return true
  }
}

const driver = <A>(options: Resolved<A>, state: State): Driver.Driver<Connection, Event<A>> => {
  // The id of the last event delivered (in the state the handle reads): sent as Last-Event-ID on every reconnect.
  state.lastEventId = options.lastEventId
  const decode =
    options.schema === undefined ? undefined : Decode.decodeJson(connector, options.schema, options.onDecodeError)
  return {
    connector,
    delivery: () => (options.serverReplays && state.lastEventId !== undefined ? "resumed" : "possible-loss"),
    connect: (session) =>
      Effect.gen(function* () {
        const url = yield* options.url
        const headers = yield* options.headers
        // A resume of an interrupted stream may be a plain GET (MCP), without the body.
        const resumingWithGet = options.resumeWithGet && session.attempt > 1 && state.lastEventId !== undefined
        const method = resumingWithGet ? "GET" : options.method
        const requestBody = options.body === undefined || resumingWithGet ? undefined : encodeBody(yield* options.body)
        if (requestBody?.json === true && !Object.keys(headers).some((name) => name.toLowerCase() === "content-type")) {
          headers["content-type"] = "application/json"
        }

        const gate = yield* Connector.pullGate(session as Driver.Session<never>)
        const scanRetry = retryScanner((millis) => session.setReconnectFloor(Duration.millis(millis)))
        let response: Connection | undefined
        // The first outcome of this connection wins: EventSource reports an error of its own after ours.
        let failure: ConnectorError.ConnectorError | undefined
        let ended = false
        const fail = (e: ConnectorError.ConnectorError) => {
          if (failure !== undefined || ended) return
          failure = e
          session.fail(e)
        }

        const sseFetch = async (
          target: string | URL,
          init: { signal: unknown; headers: Record<string, string> }
        ): Promise<FetchLikeResponse> => {
          let res: Awaited<ReturnType<typeof fetch>>
          try {
            res = await fetch(target, {
              method,
              ...(requestBody === undefined ? {} : { body: requestBody.bytes }),
              headers: {
                ...headers,
                ...init.headers,
                // The spec sends the id as UTF-8: an id beyond Latin-1 must not make every reconnect fail.
                ...(state.lastEventId === undefined ? {} : { "last-event-id": Http.utf8HeaderValue(state.lastEventId) })
              },
              cache: "no-store",
              signal: init.signal as AbortSignal,
              dispatcher
            })
          } catch (cause) {
            fail(fetchError(cause))
            throw cause
          }
          response = { status: res.status, url: res.url }
          if (res.status !== 200) {
            if (res.status === 204) {
              // "No content": the server asks us not to reconnect; the stream ends.
              ended = true
              session.end()
            } else {
              // The body of a refused request says why (a model API's 400): its first bytes go into the error.
              const preview = await Http.bodyPreview(res.body)
              fail(statusError(res.status, res.headers.get("retry-after"), session, preview))
              return { ...res, body: null } as unknown as FetchLikeResponse
            }
          } else {
            const contentType = res.headers.get("content-type") ?? ""
            if (!/^[\t\n\r ]*text\/event-stream[\t\n\r ]*(?:;|$)/i.test(contentType)) {
              const preview = await Http.bodyPreview(res.body)
              fail(
                error(
                  new ConnectorError.Protocol({
                    message: `content-type "${contentType}", expected "text/event-stream"${preview === "" ? "" : `: ${preview}`}`,
                    status: res.status,
                    retryable: false,
                    ...(preview === "" ? {} : { body: preview })
                  })
                )
              )
              return { ...res, body: null } as unknown as FetchLikeResponse
            }
          }
          const body = res.body
          if (body === null) return res
          const reader = body.getReader()
          return {
            status: res.status,
            url: res.url,
            redirected: res.redirected,
            headers: res.headers,
            body: {
              getReader: () => ({
                // Pull-based: the body is read only while the consumer keeps up.
                read: async () => {
                  await gate.beforeRead()
                  const next = await reader.read()
                  if (!next.done) {
                    session.received(next.value.byteLength)
                    scanRetry(next.value)
                  }
                  return next
                },
                cancel: () => reader.cancel()
              })
            }
          }
        }

        const onEvent = (message: MessageEvent) => {
          if (options.events !== undefined && !options.events.has(message.type)) return
          const id = message.lastEventId === "" ? undefined : message.lastEventId
          const text = message.data as string
          if (options.endOn?.({ id, event: message.type, data: text }) === true) {
            // The answer is complete: what came before is delivered, the stream ends; nothing is asked again.
            if (id !== undefined) state.lastEventId = id
            ended = true
            source?.close()
            session.end()
            return
          }
          if (id !== undefined) state.lastEventId = id
          const last = options.endAfter?.({ id, event: message.type, data: text }) === true
          // The parser bounds what it buffers across chunks; an event complete within one chunk is checked here.
          if (
            text.length > options.maxEventSize ||
            (text.length * 3 > options.maxEventSize && Buffer.byteLength(text) > options.maxEventSize)
          ) {
            return fail(oversized())
          }
          // The events of one chunk enter the buffer as one batch (bytes are counted as the body is read).
          if (decode === undefined) session.push({ id, event: message.type, data: text as unknown as A }, 0)
          else {
            const result = decode(text, `event ${id ?? "(no id)"}`, session)
            if (Result.isSuccess(result)) session.push({ id, event: message.type, data: result.success }, 0)
          }
          if (last && failure === undefined) {
            // Delivered (the end flushes what was pushed first), then the stream ends normally.
            ended = true
            source?.close()
            session.end()
          }
        }
        const oversized = () =>
          error(
            new ConnectorError.Protocol({
              message: `an event is over maxEventSize (${options.maxEventSize} bytes)`,
              retryable: false
            })
          )
        let source: EventSource | undefined
        // Closing the source aborts its request: the server sees the socket closed.
        yield* Effect.addFinalizer(() => Effect.sync(() => source?.close()))
        return yield* Effect.callback<Connection, ConnectorError.ConnectorError>((resume) => {
          let opened = false
          let settled = false
          const settle = (effect: Effect.Effect<Connection, ConnectorError.ConnectorError>) => {
            if (settled) return
            settled = true
            resume(effect)
          }
          const onError = (event: globalThis.Event & { message?: string | undefined }) => {
            source?.close()
            if (failure === undefined && !ended && opened && options.endOnClose && event.message === undefined) {
              // The server closed a complete answer, and the user said that ends it.
              ended = true
              session.end()
              return
            }
            if (failure === undefined && !ended) {
              const message = event.message ?? ""
              fail(
                /buffer size/i.test(message)
                  ? oversized()
                  : error(
                      new ConnectorError.Closed({
                        message: opened ? "the event stream ended" : message || "connection failed",
                        retryable: true
                      })
                    )
              )
            }
            if (!opened) settle(failure === undefined ? Effect.succeed(response!) : Effect.fail(failure))
          }
          const created = new Source(url, { fetch: sseFetch as never, maxBufferSize: options.maxEventSize })
          // Events come once the request is answered, after this: the handler is in place before the first.
          created.handler = (event) => {
            if (event.type === "open") {
              opened = true
              settle(Effect.succeed(response!))
            } else if (event.type === "error") onError(event)
            else onEvent(event as MessageEvent)
          }
          source = created
        })
      })
  }
}

/**
 * Connects in the current Scope and returns the handle.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>
export function make(
  options: Options<string>
): Effect.Effect<Handle<string>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(options: Options<A>): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope> {
  return Effect.flatMap(resolve(options), (resolved) => {
    const state: State = { lastEventId: undefined }
    return Effect.map(Connector.make(driver(resolved, state), resolved.common), (handle) => ({
      ...handle,
      lastEventId: Effect.sync(() => state.lastEventId)
    }))
  })
}

/**
 * The events of a Server-Sent Events endpoint: connects when run, resumes from the last id after a drop, closes
 * when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export function stream<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Stream.Stream<Event<A>, ConnectorError.ConnectorError>
export function stream(options: Options<string>): Stream.Stream<Event<string>, ConnectorError.ConnectorError>
export function stream<A>(options: Options<A>): Stream.Stream<Event<A>, ConnectorError.ConnectorError> {
  return Connector.stream(
    Effect.map(resolve(options), (resolved) => ({
      driver: driver(resolved, { lastEventId: undefined }),
      options: resolved.common
    }))
  )
}

/**
 * @since 0.2.0
 * @category checkpoints
 */
export interface CheckpointedOptions<A> extends Options<A> {
  /** Where and how often the last event id whose work is done is saved (`Checkpoint.Store` from the context). */
  readonly checkpoint: Checkpoint.Options
}

/**
 * The events of an SSE endpoint, resumed across restarts: the saved event id is sent as `Last-Event-ID` on start
 * (the stream opens with `Gap { resumed }`, its downtime counted from the save), and every event is a `Delivery`
 * whose `ack` says its work is done. The id saved is that of the last event before which every event is done,
 * every `checkpoint.every` events or `checkpoint.interval` and on a clean close: a crash replays at most a batch.
 * Run the work with `Delivery.process`. Returns the handle too (lifecycle, status, stats).
 *
 * @since 0.2.0
 * @category checkpoints
 */
export function checkpointed<A>(
  options: CheckpointedOptions<A> & { readonly schema: Schema.Decoder<A> }
): Effect.Effect<Checkpoint.Resumed<Handle<A>, Event<A>>, ConnectorError.ConnectorError, Scope.Scope | Checkpoint.Store>
export function checkpointed(
  options: CheckpointedOptions<string>
): Effect.Effect<
  Checkpoint.Resumed<Handle<string>, Event<string>>,
  ConnectorError.ConnectorError,
  Scope.Scope | Checkpoint.Store
>
export function checkpointed<A>(options: CheckpointedOptions<A>) {
  return Checkpoint.resume(
    options.checkpoint,
    (saved) =>
      make({
        ...options,
        ...Checkpoint.lastSeen(saved),
        ...(saved === undefined ? {} : { lastEventId: saved.cursor })
      } as Options<string>) as unknown as Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>,
    (event: Event<A>) => event.id
  )
}

/**
 * `checkpointed` as a stream of deliveries: resumes when run, saves on the way and when done.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export function resumable<A>(
  options: CheckpointedOptions<A> & { readonly schema: Schema.Decoder<A> }
): Stream.Stream<Delivery.Delivery<Event<A>>, ConnectorError.ConnectorError, Checkpoint.Store>
export function resumable(
  options: CheckpointedOptions<string>
): Stream.Stream<Delivery.Delivery<Event<string>>, ConnectorError.ConnectorError, Checkpoint.Store>
export function resumable<A>(
  options: CheckpointedOptions<A>
): Stream.Stream<Delivery.Delivery<Event<A>>, ConnectorError.ConnectorError, Checkpoint.Store> {
  return Checkpoint.deliveries(checkpointed(options as CheckpointedOptions<string>)) as never
}
