/**
 * Deliveries of a durable source (a Redis Streams consumer group, later JetStream): an item that stays the
 * source's until the work on it is done and acknowledged. Work that fails leaves it unacknowledged, and the source
 * delivers it again: at-least-once.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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
  /** Where it came from, for a consumer of several: the stream key (Redis), the subject (JetStream). */
  readonly source: string
  readonly id: string
  readonly item: A
  /** 1 the first time; more after a redelivery (a consumer that died, work that failed). */
  readonly deliveries: number
  /** The work is done: the source will not deliver this again. */
  readonly ack: Effect.Effect<void, ConnectorError.ConnectorError>
  /**
   * The work is over without success: the delivery stays unacknowledged, the source delivers it again later (to
   * this consumer after a reconnect, or to another after its claim time), and its place among the consumer's
   * in-flight deliveries is free. Every delivery ends with one of `ack`, `release`, `nak` or `term` (`process`
   * acks or releases); the first one decides, and the others then do nothing.
   */
  readonly release: Effect.Effect<void>
  /**
   * Deliver it again, to this consumer, after `delay` (default: at once) — a retry with a backoff the work
   * chooses. The redelivery counts as a delivery (`deliveries` grows, and `maxDeliveries` applies).
   */
  readonly nak: (delay?: Duration.Input) => Effect.Effect<void, ConnectorError.ConnectorError>
  /**
   * The work can never succeed (a poison message): never deliver it again. It goes to the source's dead letters
   * with `reason` when the consumer has them, and is acknowledged; counted either way.
   */
  readonly term: (reason?: string) => Effect.Effect<void, ConnectorError.ConnectorError>
}

/**
 * How a source settles its deliveries, for `make`: each is called at most once per delivery, for the first of
 * `ack`, `nak`, `term` and `release` asked for (a settlement that fails may be asked for again).
 *
 * @since 0.2.0
 * @category constructors
 */
export interface Settler<Key> {
  readonly ack: (key: Key) => Promise<void>
  readonly release: (key: Key) => void
  readonly nak: (key: Key, delayMillis: number) => Promise<void>
  readonly term: (key: Key, reason: string | undefined) => Promise<void>
  /** The typed error of a settlement that failed. */
  readonly failure: (cause: unknown) => ConnectorError.ConnectorError
}

const OPEN = 0
const SETTLING = 1
const SETTLED = 2

/** One object per delivery, its effects built when asked for: a source may yield hundreds of thousands a second. */
class SettledOnce<A, Key> implements Delivery<A> {
  private state = OPEN
  private readonly settler: Settler<Key>
  private readonly key: Key
  readonly source: string
  readonly id: string
  readonly item: A
  readonly deliveries: number

  constructor(settler: Settler<Key>, key: Key, source: string, id: string, item: A, deliveries: number) {
    this.settler = settler
    this.key = key
    this.source = source
    this.id = id
    this.item = item
    this.deliveries = deliveries
  }

  private settle(run: () => Promise<void>): Effect.Effect<void, ConnectorError.ConnectorError> {
    return Effect.suspend(() => {
      const settling = this.settleNow(run)
      return settling === undefined
        ? Effect.void
        : Effect.tryPromise({ try: () => settling, catch: (error) => error as ConnectorError.ConnectorError })
    })
  }

  /** The settlement under way, or `undefined` when another one decided already. Rejects with a typed error. */
  private settleNow(run: () => Promise<void>): Promise<void> | undefined {
    if (this.state !== OPEN) return undefined
    this.state = SETTLING
    return run().then(
      () => {
        this.state = SETTLED
      },
      (cause) => {
        this.state = OPEN
        throw this.settler.failure(cause)
      }
    )
  }

  /** The ack as a Promise: `process` acknowledges a whole batch with one effect. */
  ackNow(): Promise<void> | undefined {
    return this.settleNow(() => this.settler.ack(this.key))
  }

  get ack(): Effect.Effect<void, ConnectorError.ConnectorError> {
    return this.settle(() => this.settler.ack(this.key))
  }

  get release(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.state !== OPEN) return
      this.state = SETTLED
      this.settler.release(this.key)
    })
  }

  nak(delay?: Duration.Input): Effect.Effect<void, ConnectorError.ConnectorError> {
    return Effect.suspend(() => {
      const decoded = Duration.fromInput(delay ?? 0)
      if (Option.isNone(decoded) || Duration.isNegative(decoded.value)) {
        return Effect.fail(ConnectorError.config("Delivery", "nak delay", delay, "a non-negative duration"))
      }
      const delayMillis = Duration.toMillis(decoded.value)
      return this.settle(() => this.settler.nak(this.key, delayMillis))
    })
  }

  term(reason?: string): Effect.Effect<void, ConnectorError.ConnectorError> {
    return this.settle(() => this.settler.term(this.key, reason))
  }
}

/**
 * A delivery settled through `settler`, once: the first of `ack`, `nak`, `term` and `release` decides (asked twice,
 * even at once, an ack is sent once); after a settlement failed, it may be asked for again. `nak` with an invalid
 * delay is a `Config` error. For sources (drivers) that yield deliveries.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <A, Key>(
  settler: Settler<Key>,
  key: Key,
  source: string,
  id: string,
  item: A,
  deliveries: number
): Delivery<A> => new SettledOnce(settler, key, source, id, item, deliveries)

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
 * processing goes on with the next one. Work may settle its delivery itself (`delivery.nak(delay)` to retry later,
 * `delivery.term(reason)` for a poison message): the ack or release that follows then does nothing. The acks of a batch the source read are sent together, so a source can
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
  // Acks of a batch are sent together (a source may send them as one command), not one round trip each; deliveries
  // of `make` with one effect for the batch rather than a fiber each.
  const ackAll = (batch: ReadonlyArray<Delivery<A>>) =>
    batch.every((delivery) => delivery instanceof SettledOnce)
      ? Effect.tryPromise({
          try: () => Promise.all(batch.map((delivery) => (delivery as SettledOnce<A, unknown>).ackNow())),
          catch: (error) => error as ConnectorError.ConnectorError
        })
      : Effect.forEach(batch, (delivery) => delivery.ack, { concurrency: "unbounded", discard: true })
  if (concurrency === 1) {
    // In order. Each delivery's ack starts as soon as its work is done (a checkpoint sees it at once; a source
    // still sends the acks of one turn together), and the batch the source read waits for all of them at its end.
    return Stream.runForEachArray(deliveries, (batch) =>
      Effect.flatMap(
        Effect.forEach(batch, (delivery) =>
          Effect.map(attempt(delivery), (succeeded) =>
            succeeded instanceof SettledOnce ? succeeded.ackNow() : succeeded
          )
        ),
        (started) => {
          const promises: Array<Promise<void>> = []
          const others: Array<Delivery<A>> = []
          for (const ack of started) {
            if (ack instanceof Promise) promises.push(ack)
            else if (ack !== undefined) others.push(ack)
          }
          const waiting =
            promises.length === 0
              ? Effect.void
              : Effect.tryPromise({
                  try: () => Promise.all(promises),
                  catch: (error) => error as ConnectorError.ConnectorError
                })
          return others.length === 0 ? waiting : Effect.andThen(waiting, ackAll(others))
        }
      )
    )
  }
  // Concurrently across batches (a slow work does not hold the next batch back); acks overlap the next works.
  return deliveries.pipe(
    Stream.mapEffect(attempt, { concurrency }),
    Stream.filter(done),
    Stream.runForEachArray(ackAll)
  )
}
