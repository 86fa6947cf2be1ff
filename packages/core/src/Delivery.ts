/**
 * Deliveries of a durable source (a Redis Streams consumer group, later JetStream): an item that stays the
 * source's until the work on it is done and acknowledged. Work that fails leaves it unacknowledged, and the source
 * delivers it again: at-least-once.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as ConnectorError from "./ConnectorError.ts"

/**
 * One delivery: the item, its id in the source, how many times the source has delivered it, and the
 * acknowledgement that tells the source the work is done.
 *
 * @since 0.2.0
 * @category models
 */
export interface Delivery<A> {
  readonly id: string
  readonly item: A
  /** 1 the first time; more after a redelivery (a consumer that died, work that failed). */
  readonly deliveries: number
  /** The work is done: the source will not deliver this again. */
  readonly ack: Effect.Effect<void, ConnectorError.ConnectorError>
  /**
   * The work is over without success: the delivery stays unacknowledged, the source delivers it again later, and
   * its place among the consumer's in-flight deliveries is free. Every delivery ends with `ack` or `release`
   * (`process` does it); after `ack`, `release` does nothing.
   */
  readonly release: Effect.Effect<void>
}

/**
 * @since 0.2.0
 * @category options
 */
export interface ProcessOptions {
  /** Deliveries worked on at once. Default 1 (in order). */
  readonly concurrency?: number | undefined
}

/**
 * Runs `work` on every delivery of `deliveries` and acknowledges each once its work succeeded. Work that fails
 * releases its delivery unacknowledged — the source delivers it again later — and is logged with the delivery's id;
 * processing goes on with the next one. Fails only with the source's error.
 *
 * @since 0.2.0
 * @category processing
 */
export const process = <A, E, R, E2, R2>(
  deliveries: Stream.Stream<Delivery<A>, E, R>,
  work: (item: A, delivery: Delivery<A>) => Effect.Effect<unknown, E2, R2>,
  options: ProcessOptions = {}
): Effect.Effect<void, E | ConnectorError.ConnectorError, R | R2> =>
  deliveries.pipe(
    Stream.mapEffect(
      (delivery) =>
        Effect.suspend(() => work(delivery.item, delivery)).pipe(
          Effect.matchCauseEffect({
            onSuccess: () => delivery.ack,
            onFailure: (cause) =>
              Effect.andThen(
                delivery.release,
                Effect.logWarning(`delivery ${delivery.id} not acknowledged: its work failed`, cause)
              )
          })
        ),
      { concurrency: options.concurrency ?? 1 }
    ),
    Stream.runDrain
  )
