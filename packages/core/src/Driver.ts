/**
 * The driver contract: what a connector supplies so that core can run it. A driver says how to dial its library
 * and attach listeners (`connect`, feeding a `Session`), how to probe liveness, and what an outage means for data;
 * core does the rest (reconnect, watchdog, lifecycle, resync, overflow, metrics). Read this module to write a
 * connector; `docs/writing-a-connector.md` walks through one.
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as ConnectorError from "./ConnectorError.ts"
import type * as Lifecycle from "./Lifecycle.ts"
import type * as Overflow from "./Overflow.ts"

/**
 * A driver's view of one connection. Its callbacks are safe to call from any library callback, at any time:
 * after the connection ended they are no-ops (a late event of an old socket never reaches the stream).
 *
 * @since 0.2.0
 * @category driver
 */
export interface Session<in Item> {
  /** 1 for the first connection attempt. */
  readonly attempt: number
  /** Pushes one message; `false` when the overflow strategy dropped it (counted) or the session is over. */
  readonly emit: (item: Item) => boolean
  /** Pushes messages that arrived together (one array through the stream: cheaper than one by one). */
  readonly emitAll: (items: ReadonlyArray<Item>) => boolean
  /** Payload bytes received: counted in the metrics, and proof of life for the liveness watchdog. */
  readonly received: (bytes: number) => void
  /**
   * `received(bytes)` then `emit(item)`, batched: everything pushed this way before the current callback returns
   * enters the stream as one array, at the next microtask checkpoint (or earlier, before any other `emit`, `end`
   * or `fail`, so order is kept). For libraries that call back once per message for the many messages of one
   * socket read (ws, pg, ioredis): one buffer operation per read instead of one per message.
   */
  readonly push: (item: Item, bytes: number) => void
  /** Delivers what `push` holds now (a driver that reads in a loop calls it at the end of each chunk). */
  readonly flush: () => void
  /** Traffic without payload (pong, comment, heartbeat): proof of life for the watchdog. */
  readonly alive: () => void
  /** A message was skipped by the decode policy: counted in `streamemit_decode_skipped_total`. */
  readonly skipped: () => void
  /** The driver itself discarded `count` messages (e.g. intermediate states merged away): counted as dropped. */
  readonly dropped: (count: number) => void
  /**
   * The source says `count` messages were lost before they could be read (a stream trimmed past unread entries):
   * a `Gap { delivery: "possible-loss", lost: count }` goes into the stream at this point (after `Connected` and
   * the reconnect's `Gap` when it comes earlier), counted in `streamemit_lost_total`.
   */
  readonly lost: (count: number) => void
  /** The source ended normally (e.g. WebSocket close 1000): the stream ends, no reconnect. */
  readonly end: () => void
  /** The connection broke: core reconnects if the error is retryable and reconnect is on; else the stream fails. */
  readonly fail: (error: ConnectorError.ConnectorError) => void
  /** The next reconnect waits at least this long (SSE `retry:`, HTTP `Retry-After`). */
  readonly setReconnectFloor: (delay: Duration.Input) => void
  /** Registers the transport's pause/resume, used by the `"suspend"` overflow strategy. */
  readonly flowControl: (control: Overflow.FlowControl) => void
}

/**
 * What a connector supplies. Core calls its functions as methods (`driver.connect(session)`): a class whose
 * prototype has them is a driver, and its handles then share them instead of holding closures each.
 *
 * @since 0.2.0
 * @category driver
 */
export interface Driver<Conn, Item> {
  /** Labels errors and metrics: `"websocket"`, `"pg-listen"`, … */
  readonly connector: string
  /**
   * Dials, authenticates, subscribes and attaches listeners that feed `session`, in the Scope of this connection:
   * everything acquired there is released when the connection ends, fails or is interrupted. Succeeds once the
   * connection is usable (that is when `Connected` is published). A `session.fail` while connecting fails the
   * attempt at once, whatever `connect` is still waiting for.
   */
  readonly connect: (session: Session<Item>) => Effect.Effect<Conn, ConnectorError.ConnectorError, Scope.Scope>
  /**
   * Liveness probe (ws ping, `SELECT 1`, `PING`), run after `liveness.interval` without traffic; it must succeed
   * within `liveness.timeout`. Without a probe, the watchdog is an idle timer: no traffic for `timeout` is death.
   */
  readonly probe?: ((conn: Conn) => Effect.Effect<void, ConnectorError.ConnectorError>) | undefined
  /** What an outage means for data; default `"possible-loss"`. */
  readonly delivery?: (() => Lifecycle.Delivery) | undefined
  /**
   * Messages flow while connecting, ahead of `Connected` (a file watcher's initial scan comes before its
   * `ready`). Default `false`: messages of a new connection wait behind `Connected`, `Gap` and the resync. A
   * function decides per attempt (a watcher's rescan after a lost event comes after its `Gap`).
   */
  readonly ungated?: boolean | ((attempt: number) => boolean) | undefined
}
