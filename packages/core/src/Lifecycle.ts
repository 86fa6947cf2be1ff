/**
 * Lifecycle events, one shape for every connector: `Connecting`, `Connected`, `Disconnected`, `Gap`, `Closed`.
 * In-band, they are ordered with the messages (`Signal`), so a consumer knows exactly which messages came before
 * and after an outage.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type { ConnectorError } from "./ConnectorError.ts"

const EventTypeId: unique symbol = Symbol.for("@streamemit/core/Lifecycle/Event") as never

/**
 * What an outage means for data:
 * - `"resumed"`: the source replayed from our position (e.g. SSE `Last-Event-ID`): nothing was lost.
 * - `"possible-loss"`: messages sent while we were down are gone (pub/sub, NOTIFY).
 *
 * @since 0.1.0
 * @category models
 */
export type Delivery = "resumed" | "possible-loss"

/**
 * A connection attempt starts (1 for the first).
 *
 * @since 0.1.0
 * @category events
 */
export class Connecting extends Data.TaggedClass("Connecting")<{ readonly attempt: number }> {
  readonly [EventTypeId] = EventTypeId
}

/**
 * The connection is up: dialed, authenticated, subscribed (for a watcher: the initial scan is done).
 *
 * @since 0.1.0
 * @category events
 */
export class Connected extends Data.TaggedClass("Connected")<{ readonly attempt: number }> {
  readonly [EventTypeId] = EventTypeId
}

/**
 * The connection (or an attempt) failed. `retryIn` is the delay before the next attempt, `undefined` when there
 * will be none (the error is not retryable, reconnect is off, or the schedule gave up).
 *
 * @since 0.1.0
 * @category events
 */
export class Disconnected extends Data.TaggedClass("Disconnected")<{
  readonly attempt: number
  readonly error: ConnectorError
  readonly retryIn: Duration.Duration | undefined
}> {
  readonly [EventTypeId] = EventTypeId
}

/**
 * After a reconnect, before any message of the new connection: the outage lasted `downtime`, and `delivery`
 * says whether messages may have been lost in it. Also in the middle of a connection when the source itself says
 * it lost messages before they were read (a Redis stream trimmed past unread entries): then `downtime` is zero,
 * `delivery` is `"possible-loss"` and `lost` is the count.
 *
 * @since 0.1.0
 * @category events
 */
export class Gap extends Data.TaggedClass("Gap")<{
  readonly downtime: Duration.Duration
  readonly delivery: Delivery
  /** How many messages were lost, when the source knows (counted in `streamemit_lost_total`). */
  readonly lost?: number | undefined
}> {
  readonly [EventTypeId] = EventTypeId
}

/**
 * The stream is over: the source ended (`error` undefined), failed for good, or the scope closed.
 *
 * @since 0.1.0
 * @category events
 */
export class Closed extends Data.TaggedClass("Closed")<{ readonly error: ConnectorError | undefined }> {
  readonly [EventTypeId] = EventTypeId
}

/**
 * @since 0.1.0
 * @category models
 */
export type Event = Connecting | Connected | Disconnected | Gap | Closed

/**
 * The connection's state now: the last event but `Gap`.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = Connecting | Connected | Disconnected | Closed

/**
 * A message, in-band with the lifecycle events.
 *
 * @since 0.1.0
 * @category models
 */
export class Message<A> extends Data.TaggedClass("Message")<{ readonly message: A }> {}

/**
 * @since 0.1.0
 * @category models
 */
export type Signal<A> = Message<A> | Event

/**
 * @since 0.1.0
 * @category guards
 */
export const isEvent = (u: unknown): u is Event => typeof u === "object" && u !== null && EventTypeId in u
