/**
 * The messages of a WebSocket (`ws`) as a scoped, bounded, self-healing stream: how to dial `ws`, listen to it,
 * pause it and tell its errors apart. Reconnect, heartbeat scheduling, lifecycle, overflow and metrics are core's.
 *
 * @since 0.1.0
 */
import type * as NodeHttp from "node:http"
import type * as Net from "node:net"
import {
  Checkpoint,
  Connector,
  ConnectorError,
  Decode,
  type Delivery,
  type Driver,
  Http,
  type Lifecycle
} from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import WS from "ws"

const connector = "websocket"

/**
 * A close code, or an inclusive range of them (`[4000, 4999]`).
 *
 * @since 0.1.0
 * @category options
 */
export type CloseCodes = ReadonlyArray<number | readonly [number, number]>

/**
 * @since 0.1.0
 * @category options
 */
export interface Options<A = string> extends Omit<Connector.CommonOptions<A>, "liveness" | "connectTimeout"> {
  /** `ws://` or `wss://` URL; an Effect is evaluated on every connection attempt (fresh tokens). */
  readonly url: Connector.PerAttempt<string | URL>
  /** Subprotocols offered in the handshake. */
  readonly protocols?: string | ReadonlyArray<string> | undefined
  /** Handshake headers; values may be `Redacted`; an Effect is evaluated on every attempt. */
  readonly headers?: Connector.PerAttempt<Http.Headers> | undefined
  /** Dial + handshake + `onOpen` must finish within this. Default 10 seconds. */
  readonly handshakeTimeout?: Duration.Input | undefined
  /** Ping after `interval` without traffic; no pong within `timeout` → dead → reconnect. Default 30 s / 10 s. */
  readonly heartbeat?: false | Connector.Liveness | undefined
  /** Largest message accepted, in bytes; a larger one is a `Protocol` error (counted). Default 16 MiB. */
  readonly maxPayload?: number | undefined
  /** Close codes that end the stream normally (default 1000, 1001) and that fail it for good (default 1002, 1003, 1007, 1008). Others reconnect. */
  readonly closeCodes?: { readonly end?: CloseCodes | undefined; readonly fatal?: CloseCodes | undefined } | undefined
  /** Runs after every open, before `Connected`: (re)send subscribe messages here. */
  readonly onOpen?: ((socket: Sender) => Effect.Effect<void, ConnectorError.ConnectorError>) | undefined
  /**
   * Deliver messages as bytes (`Uint8Array`) instead of text. Default false: text frames as strings, and binary
   * frames as strings when they are valid UTF-8; a binary frame that is not is a `Decode` error naming this option.
   */
  readonly binary?: boolean | undefined
  /** How long `send` on the handle waits for a connection (while connecting or reconnecting). Default 10 seconds. */
  readonly sendTimeout?: Duration.Input | undefined
  /** Decodes each text message as JSON with this Schema. */
  readonly schema?: Schema.Decoder<A> | undefined
  /** What to do with a message the Schema rejects (or, in text mode, a binary frame that is not UTF-8). Default `"fail"`. */
  readonly onDecodeError?: Decode.OnDecodeError | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Sender {
  /** Sends a text or binary message; resolves once written to the socket. */
  readonly send: (data: string | Uint8Array) => Effect.Effect<void, ConnectorError.ConnectorError>
}

/**
 * The scoped handle: the core handle plus `send`. `send` waits for a connection (at most `sendTimeout`, then a
 * `Timeout` error) and fails with a `Closed` error if the socket closes before the message is written. Nothing
 * is queued across reconnects: use `onOpen` for what every connection must send.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle<A> extends Connector.Handle<WS, A>, Sender {}

interface Resolved<A> {
  readonly common: Connector.Resolved<A>
  readonly url: Effect.Effect<string, ConnectorError.ConnectorError>
  readonly headers: Effect.Effect<Record<string, string>, ConnectorError.ConnectorError>
  readonly protocols: ReadonlyArray<string>
  readonly maxPayload: number
  readonly endCodes: CloseCodes
  readonly fatalCodes: CloseCodes
  readonly onOpen: Options<A>["onOpen"]
  readonly binary: boolean
  readonly skipUndecodable: boolean
  readonly sendTimeout: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly decode: ((text: string, session: Driver.Session<A>, bytes?: number) => void) | undefined
}

// After `pause()`, ws still emits the frames of the socket read it is parsing: up to 64 KiB, at most 32,768
// minimal frames. The hard cap leaves room for that burst, so pausing never overflows.
const burstAfterPause = 32_768

const defaults: Connector.Defaults = {
  optionNames: { liveness: "heartbeat", connectTimeout: "handshakeTimeout" },
  overflow: { strategy: "suspend", bufferSize: 8192, hardCap: (bufferSize) => bufferSize + burstAfterPause },
  liveness: { interval: "30 seconds", timeout: "10 seconds" }
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const isCodes = (codes: unknown): codes is CloseCodes =>
  Array.isArray(codes) &&
  codes.every(
    (c) =>
      (Number.isInteger(c) && c >= 1000 && c <= 4999) ||
      (Array.isArray(c) && c.length === 2 && c.every((x) => Number.isInteger(x) && x >= 1000 && x <= 4999))
  )

const matches = (codes: CloseCodes, code: number) =>
  codes.some((c) => (typeof c === "number" ? c === code : code >= c[0] && code <= c[1]))

const resolve = <A>(options: Options<A>): Effect.Effect<Resolved<A>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const common = yield* Connector.resolve<A>(
      connector,
      {
        ...options,
        connectTimeout: options.handshakeTimeout,
        liveness: options.heartbeat
      },
      defaults
    )
    const url = yield* Http.urlOption(connector, options.url, ["ws:", "wss:", "http:", "https:"])
    const headers = Http.headersOption(options.headers)
    const protocols =
      options.protocols === undefined
        ? []
        : typeof options.protocols === "string"
          ? [options.protocols]
          : [...options.protocols]
    if (!protocols.every((p) => typeof p === "string" && p.length > 0)) {
      return yield* Effect.fail(config("protocols", options.protocols, "non-empty strings"))
    }
    const maxPayload = options.maxPayload ?? 16 * 1024 * 1024
    if (!Number.isInteger(maxPayload) || maxPayload < 1) {
      return yield* Effect.fail(config("maxPayload", maxPayload, "a positive integer (bytes)"))
    }
    const endCodes = options.closeCodes?.end ?? [1000, 1001]
    const fatalCodes = options.closeCodes?.fatal ?? [1002, 1003, 1007, 1008]
    if (!isCodes(endCodes)) return yield* Effect.fail(config("closeCodes.end", endCodes, "close codes 1000–4999"))
    if (!isCodes(fatalCodes)) return yield* Effect.fail(config("closeCodes.fatal", fatalCodes, "close codes 1000–4999"))
    const onDecodeError = yield* Connector.failOrSkip(connector, "onDecodeError", options.onDecodeError)
    if (options.binary === true && options.schema !== undefined) {
      return yield* Effect.fail(config("binary", true, "false when a schema decodes text messages"))
    }
    const sendTimeout = yield* Connector.duration(connector, "sendTimeout", options.sendTimeout, "10 seconds")
    return {
      common,
      url,
      headers,
      protocols,
      maxPayload,
      endCodes,
      fatalCodes,
      onOpen: options.onOpen,
      binary: options.binary === true,
      skipUndecodable: onDecodeError === "skip",
      sendTimeout,
      heartbeatInterval: common.liveness?.interval ?? Duration.seconds(30),
      decode: options.schema === undefined ? undefined : Decode.jsonDecoder(connector, options.schema, onDecodeError)
    }
  })

/** How `ws` errors and handshake responses map to reasons. */
const classify = (error: Error & { readonly code?: string }): ConnectorError.ConnectorError => {
  const message = error.message
  switch (error.code) {
    case "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH":
      return ConnectorError.make(
        connector,
        new ConnectorError.Protocol({ message: `message over maxPayload: ${message}`, cause: error })
      )
    case "WS_ERR_INVALID_UTF8":
    case "WS_ERR_INVALID_OPCODE":
    case "WS_ERR_INVALID_CLOSE_CODE":
    case "WS_ERR_UNEXPECTED_MASK":
    case "WS_ERR_EXPECTED_FIN":
    case "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH":
      return ConnectorError.make(connector, new ConnectorError.Protocol({ message, cause: error }))
    case "ERR_INVALID_URL":
      return ConnectorError.make(connector, new ConnectorError.Config({ option: "url", message, cause: error }))
    default:
      return ConnectorError.socketError(connector, error)
  }
}

/** A refused handshake, classified as every HTTP status is (core's `Http.statusError`). */
const handshakeError = (
  response: NodeHttp.IncomingMessage,
  session: Driver.Session<unknown>
): ConnectorError.ConnectorError => {
  const status = response.statusCode ?? 0
  return Http.statusError(
    connector,
    status,
    response.headers["retry-after"],
    session as Driver.Session<never>,
    `handshake refused with HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ""}`
  )
}

const closeError = (code: number, reason: string, fatal: boolean) =>
  ConnectorError.make(
    connector,
    new ConnectorError.Closed({
      message: `closed by the server with code ${code}${reason ? ` (${reason})` : ""}`,
      closeCode: code,
      retryable: !fatal
    })
  )

const sendOn =
  (socket: WS) =>
  (data: string | Uint8Array): Effect.Effect<void, ConnectorError.ConnectorError> =>
    Effect.callback<void, ConnectorError.ConnectorError>((resume) => {
      if (socket.readyState !== WS.OPEN) {
        resume(
          Effect.fail(ConnectorError.make(connector, new ConnectorError.Closed({ message: "socket is not open" })))
        )
        return
      }
      socket.send(data, (error) =>
        resume(
          error === undefined || error === null
            ? Effect.void
            : Effect.fail(
                ConnectorError.make(connector, new ConnectorError.Closed({ message: error.message, cause: error }))
              )
        )
      )
    })

/** The driver: a class, so that thousands of handles share its methods instead of holding closures each. */
class WsDriver<A> implements Driver.Driver<WS, A> {
  readonly connector = connector
  private readonly options: Resolved<A>

  constructor(options: Resolved<A>) {
    this.options = options
  }

  connect(session: Driver.Session<A>): Effect.Effect<WS, ConnectorError.ConnectorError, Scope.Scope> {
    const options = this.options
    return Effect.gen(function* () {
      const url = yield* options.url
      const headers = yield* options.headers
      const socket = yield* Effect.acquireRelease(
        Effect.sync(
          () =>
            new WS(url, options.protocols as Array<string>, {
              headers,
              maxPayload: options.maxPayload,
              perMessageDeflate: false,
              followRedirects: false
            })
        ),
        // A connection that failed is dead: no close handshake through it. Otherwise close politely (1000), cut
        // short after core's grace period.
        (socket, exit) =>
          Connector.release(
            exit,
            socket.readyState === WS.OPEN
              ? () =>
                  new Promise<void>((resolve) => {
                    socket.once("close", () => resolve())
                    socket.close(1000)
                  })
              : undefined,
            () => socket.terminate()
          )
      )
      // A socket emits errors after we stop caring (e.g. terminated while connecting): never unhandled.
      socket.on("error", (error) => session.fail(classify(error)))
      socket.on("pong", session.alive)
      socket.on("ping", session.alive)
      const decode = options.decode
      const binary = options.binary
      // ws calls back once per frame for all the frames of a socket read: `push` hands them over as one batch.
      const push = session.push as (item: unknown, bytes: number) => void
      socket.on("message", (data: Buffer, isBinary: boolean) => {
        if (binary) return push(data, data.length)
        // Text mode: a binary frame is text only when it is valid UTF-8 (never mangled by replacement chars).
        const text = isBinary ? binaryAsText(data, session, options.skipUndecodable) : data.toString()
        if (text === undefined) return
        if (decode !== undefined) decode(text, session, data.length)
        else push(text, data.length)
      })
      socket.on("close", (code: number, reason: Buffer) => {
        if (matches(options.endCodes, code)) session.end()
        else session.fail(closeError(code, reason.toString(), matches(options.fatalCodes, code)))
      })
      yield* Effect.callback<void, ConnectorError.ConnectorError>((resume) => {
        // The first of the three settles the handshake and detaches all three: none outlives it, since a
        // connection may stay open for days.
        const detach = () => {
          socket.off("open", onOpen)
          socket.off("error", onError)
          socket.off("unexpected-response", onResponse)
        }
        const onOpen = () => {
          detach()
          // While the consumer holds the socket paused no ping can be answered: TCP keepalive finds a dead peer.
          ;(socket as unknown as { _socket?: Net.Socket })._socket?.setKeepAlive(
            true,
            Duration.toMillis(options.heartbeatInterval)
          )
          resume(Effect.void)
        }
        const onError = (error: Error) => {
          detach()
          resume(Effect.fail(classify(error)))
        }
        const onResponse = (request: NodeHttp.ClientRequest, response: NodeHttp.IncomingMessage) => {
          detach()
          request.destroy()
          resume(Effect.fail(handshakeError(response, session as Driver.Session<unknown>)))
        }
        socket.on("open", onOpen)
        socket.on("error", onError)
        socket.on("unexpected-response", onResponse)
        return Effect.sync(detach)
      })
      // The socket's own pause and resume (called as its methods).
      session.flowControl(socket)
      if (options.onOpen !== undefined) yield* options.onOpen({ send: sendOn(socket) })
      return socket
    })
  }

  probe(socket: WS): Effect.Effect<void, ConnectorError.ConnectorError> {
    return Effect.callback<void, ConnectorError.ConnectorError>((resume) => {
      const onPong = () => resume(Effect.void)
      socket.once("pong", onPong)
      try {
        socket.ping()
      } catch (error) {
        resume(Effect.fail(classify(error as Error)))
      }
      return Effect.sync(() => {
        socket.off("pong", onPong)
      })
    })
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** A binary frame in text mode: its text when valid UTF-8; otherwise a `Decode` error (or a counted skip). */
const binaryAsText = (data: Buffer, session: Driver.Session<never>, skip: boolean): string | undefined => {
  try {
    return utf8.decode(data)
  } catch (cause) {
    if (skip) session.skipped()
    else
      session.fail(
        ConnectorError.make(
          connector,
          new ConnectorError.Decode({
            message: `a binary frame of ${data.length} bytes is not UTF-8 text: set the option binary: true to receive bytes`,
            cause
          })
        )
      )
    return undefined
  }
}

/**
 * Connects in the current Scope and returns the handle: messages, lifecycle events, status, and `send`.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make(
  options: Options<string> & { readonly binary: true }
): Effect.Effect<Handle<Uint8Array>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A = string>(
  options: Options<A>
): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(options: Options<A>): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope> {
  return Effect.gen(function* () {
    const resolved = yield* resolve(options)
    const handle = yield* Connector.make(new WsDriver(resolved), resolved.common)
    const noConnection = () =>
      ConnectorError.make(
        connector,
        new ConnectorError.Timeout({
          message: `send: no connection within ${Duration.format(resolved.sendTimeout)} (sendTimeout)`
        })
      )
    return {
      ...handle,
      send: (data: string | Uint8Array) =>
        handle.awaitConnection.pipe(
          Effect.timeoutOrElse({
            duration: resolved.sendTimeout,
            orElse: () => Effect.fail(noConnection())
          }),
          Effect.flatMap((socket) => sendOn(socket)(data))
        )
    }
  })
}

/**
 * The messages of a WebSocket: connects when run, reconnects as configured, closes everything when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export function stream(
  options: Options<string> & { readonly binary: true }
): Stream.Stream<Uint8Array, ConnectorError.ConnectorError>
export function stream<A = string>(options: Options<A>): Stream.Stream<A, ConnectorError.ConnectorError>
export function stream<A>(options: Options<A>): Stream.Stream<A, ConnectorError.ConnectorError> {
  return Connector.stream(
    Effect.map(resolve(options), (resolved) => ({ driver: new WsDriver(resolved), options: resolved.common }))
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export type Event = Lifecycle.Event

/**
 * @since 0.2.0
 * @category checkpoints
 */
export interface CheckpointedOptions<A> extends Omit<Options<A>, "onOpen" | "binary"> {
  readonly checkpoint: Checkpoint.Options & {
    /** A message's position in the feed (its sequence number, an event id); one without keeps the previous. */
    readonly cursorOf: (message: A) => string | undefined
  }
  /**
   * Every connection, with the cursor to continue from: the last one saved on start, the last message received
   * after a reconnect (`undefined` before any). Send the application's "everything after X" here.
   */
  readonly onOpen: (socket: Sender, cursor: string | undefined) => Effect.Effect<void, ConnectorError.ConnectorError>
}

/**
 * A WebSocket feed resumed across restarts at the application level: `checkpoint.cursorOf` extracts a message's
 * position, the position of the last message whose work is done is saved, and `onOpen(socket, cursor)` asks the
 * server for what comes after it — on start (the stream opens with `Gap { possible-loss }`: only the server knows
 * whether it replays) and after every reconnect. Messages are `Delivery` values: run the work with
 * `Delivery.process`; saved every `checkpoint.every` or `checkpoint.interval` and on a clean close.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointed = <A = string>(
  options: CheckpointedOptions<A>
): Effect.Effect<Checkpoint.Resumed<Handle<A>, A>, ConnectorError.ConnectorError, Scope.Scope | Checkpoint.Store> => {
  const { checkpoint, onOpen, ...rest } = options
  return Checkpoint.resume(
    checkpoint,
    (saved, latest) =>
      make<A>({
        ...rest,
        onOpen: (socket) => onOpen(socket, latest()),
        ...Checkpoint.lastSeen(saved)
      } as Options<A>),
    checkpoint.cursorOf
  )
}

/**
 * `checkpointed` as a stream of deliveries.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const resumable = <A = string>(
  options: CheckpointedOptions<A>
): Stream.Stream<Delivery.Delivery<A>, ConnectorError.ConnectorError, Checkpoint.Store> =>
  Checkpoint.deliveries(checkpointed(options))
