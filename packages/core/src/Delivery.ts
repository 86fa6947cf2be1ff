/**
 * Deliveries of a durable source (a Redis Streams consumer group, later JetStream): an item that stays the
 * source's until the work on it is done and acknowledged. Work that fails leaves it unacknowledged, and the source
 * delivers it again: at-least-once.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as ConnectorError from "./ConnectorError.ts"

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
 * processing goes on with the next one. The acks of a batch the source read are sent together, so a source can
 * acknowledge them in one command; with `concurrency` 1 each batch is worked on in order, then acknowledged. Fails
 * with the source's error, an ack's error, or at once with a `Config` error for an invalid `concurrency`.
 *
 * @since 0.2.0
 * @category processing
 */
export const process = <A, E, R, E2, R2>(
  deliveries: Stream.Stream<Delivery<A>, E, R>,
  work: (item: A, delivery: Delivery<A>) => Effect.Effect<unknown, E2, R2>,
  options: ProcessOptions = {}
): Effect.Effect<void, E | ConnectorError.ConnectorError, R | R2> => {
  const concurrency = options.concurrency ?? 1
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    return Effect.fail(ConnectorError.config("Delivery.process", "concurrency", concurrency, "a positive integer"))
  }
  /** The delivery when its work succeeded; released (and logged) when it failed. */
  const attempt = (delivery: Delivery<A>) =>
    Effect.suspend(() => work(delivery.item, delivery)).pipe(
      Effect.matchCauseEffect({
        onSuccess: () => Effect.succeed(delivery),
        onFailure: (cause) =>
          delivery.release.pipe(
            Effect.andThen(Effect.logWarning(`delivery ${delivery.id} not acknowledged: its work failed`, cause)),
            Effect.as(undefined)
          )
      })
    )
  const done = (delivery: Delivery<A> | undefined): delivery is Delivery<A> => delivery !== undefined
  // Acks of a batch are sent together (a source may send them as one command), not one round trip each.
  const ackAll = (batch: ReadonlyArray<Delivery<A>>) =>
    Effect.forEach(batch, (delivery) => delivery.ack, { concurrency: "unbounded", discard: true })
  if (concurrency === 1) {
    // In order: each batch the source read is worked on, then acknowledged.
    return Stream.runForEachArray(deliveries, (batch) =>
      Effect.flatMap(Effect.forEach(batch, attempt), (outcomes) => ackAll(outcomes.filter(done)))
    )
  }
  // Concurrently across batches (a slow work does not hold the next batch back); acks overlap the next works.
  return deliveries.pipe(
    Stream.mapEffect(attempt, { concurrency }),
    Stream.filter(done),
    Stream.runForEachArray(ackAll)
  )
}
