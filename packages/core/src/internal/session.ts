/**
 * A driver's view of one connection (`Driver.Session`): what its callbacks push (batched per synchronous run),
 * traffic counts for the watchdog and the metrics, and the end or failure it reports. A late callback of a
 * connection that is over hits an inactive session and is ignored.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as ConnectorError from "../ConnectorError.ts"
import type * as Driver from "../Driver.ts"
import * as Lifecycle from "../Lifecycle.ts"
import type * as Overflow from "../Overflow.ts"
import type { Machine } from "./machine.ts"

export class SessionState<Item> implements Driver.Session<Item> {
  active = true
  /**
   * When traffic was last seen, on the clock of `activeNow` (time paused by our buffer does not pass): stamped
   * once per `push` batch (one socket read), per `emit`/`emitAll` call, and by `received` and `alive`.
   */
  private stamp: number
  ended: { readonly _tag: "End" } | { readonly _tag: "Fail"; readonly error: ConnectorError.ConnectorError } | undefined
  notify: (() => void) | undefined = undefined
  messages = 0
  bytes = 0
  readonly attempt: number
  private readonly core: Machine<Item>

  constructor(core: Machine<Item>, attempt: number, now: number) {
    this.core = core
    this.attempt = attempt
    this.stamp = now
  }

  private pending: Array<Item> = []
  private pendingBytes = 0

  // The driver's callbacks (`Driver.Session`), each bound on first use and kept: a driver may hand one to its library
  // as a listener, and a quiet connection then holds the few closures its driver took, not thirteen (0.7 KB).
  private bound: {
    push?: (item: Item, bytes: number) => void
    flush?: () => void
    emit?: (item: Item) => boolean
    emitAll?: (items: ReadonlyArray<Item>) => boolean
    received?: (bytes: number) => void
    alive?: () => void
    skipped?: () => void
    dropped?: (count: number) => void
    lost?: (count: number) => void
    end?: () => void
    fail?: (error: ConnectorError.ConnectorError) => void
    setReconnectFloor?: (delay: Duration.Input) => void
    flowControl?: (control: Overflow.FlowControl) => void
  } = {}

  get push(): (item: Item, bytes: number) => void {
    return (this.bound.push ??= (item, bytes) => this.pushOne(item, bytes))
  }
  get flush(): () => void {
    return (this.bound.flush ??= () => this.flushPending())
  }
  get emit(): (item: Item) => boolean {
    return (this.bound.emit ??= (item) => this.emitOne(item))
  }
  get emitAll(): (items: ReadonlyArray<Item>) => boolean {
    return (this.bound.emitAll ??= (items) => this.emitMany(items))
  }
  get received(): (bytes: number) => void {
    return (this.bound.received ??= (bytes) => this.receivedBytes(bytes))
  }
  get alive(): () => void {
    return (this.bound.alive ??= () => this.markAlive())
  }
  get skipped(): () => void {
    return (this.bound.skipped ??= () => this.countSkipped())
  }
  get dropped(): (count: number) => void {
    return (this.bound.dropped ??= (count) => this.countDropped(count))
  }
  get lost(): (count: number) => void {
    return (this.bound.lost ??= (count) => this.countLost(count))
  }
  get end(): () => void {
    return (this.bound.end ??= () => this.settle({ _tag: "End" }))
  }
  get fail(): (error: ConnectorError.ConnectorError) => void {
    return (this.bound.fail ??= (error) => this.settle({ _tag: "Fail", error }))
  }
  get setReconnectFloor(): (delay: Duration.Input) => void {
    return (this.bound.setReconnectFloor ??= (delay) => this.floor(delay))
  }
  get flowControl(): (control: Overflow.FlowControl) => void {
    return (this.bound.flowControl ??= (control) => this.setFlow(control))
  }

  private pushOne(item: Item, bytes: number): void {
    if (this.pending.length === 0) queueMicrotask(this.flush)
    this.pending.push(item)
    this.pendingBytes += bytes
  }

  private flushPending(): void {
    if (this.pending.length === 0) return
    const items = this.pending
    this.pending = []
    this.receivedBytes(this.pendingBytes)
    this.pendingBytes = 0
    this.deliver(items, true)
  }

  private emitOne(item: Item): boolean {
    if (this.pending.length > 0) this.flushPending()
    // Nothing after the connection's end or failure, even from the rest of a chunk being split.
    if (!this.active || this.ended !== undefined) return false
    this.messages++
    this.stamp = this.core.activeNow()
    return this.core.buffer.offer(item)
  }

  private emitMany(items: ReadonlyArray<Item>): boolean {
    if (this.pending.length > 0) this.flushPending()
    return this.deliver(items, false)
  }

  /** `owned`: the array is ours to hand over (the `push` batch), so the buffer may keep it without a copy. */
  private deliver(items: ReadonlyArray<Item>, owned: boolean): boolean {
    if (!this.active || this.ended !== undefined) return false
    this.messages += items.length
    // A `push` batch (owned) was stamped by `received` in `flush`.
    if (!owned) this.stamp = this.core.activeNow()
    return this.core.buffer.offerAll(items, owned)
  }

  private receivedBytes(bytes: number): void {
    this.bytes += bytes
    this.stamp = this.core.activeNow()
  }

  private markAlive(): void {
    this.stamp = this.core.activeNow()
  }

  /** When traffic was last seen, on the clock of `activeNow`. */
  lastSeen(): number {
    return this.stamp
  }

  private countSkipped(): void {
    this.core.update(this.core.metrics.decodeSkipped, 1)
  }

  private countDropped(count: number): void {
    if (!this.active || count <= 0) return
    this.core.buffer.dropped += count
    this.core.update(this.core.metrics.dropped, count)
  }

  /** Set once `Connected` (and the reconnect's `Gap`, and the resync) are in the stream. */
  private live = false
  private lostEarly = 0

  private countLost(count: number): void {
    if (!this.active || this.ended !== undefined || count <= 0) return
    // What was read before the loss was noticed comes before its Gap.
    if (this.pending.length > 0) this.flushPending()
    this.core.update(this.core.metrics.lost, count)
    if (this.live) this.publishLost(count)
    else this.lostEarly += count
  }

  /** The connection is announced: a loss noticed while connecting follows `Connected` (and its `Gap`) now. */
  goLive(): void {
    this.live = true
    // The watchdog counts from here: a slow connect (or resync) has its own timeout and must not use up the
    // idle budget of the connection it produced.
    this.stamp = this.core.activeNow()
    if (this.lostEarly > 0) this.publishLost(this.lostEarly)
    this.lostEarly = 0
  }

  private publishLost(count: number): void {
    this.core.publish(new Lifecycle.Gap({ downtime: Duration.zero, delivery: "possible-loss", lost: count }))
  }

  private settle(outcome: NonNullable<SessionState<Item>["ended"]>): void {
    if (!this.active || this.ended !== undefined) return
    // What arrived before the end is delivered before it.
    if (this.pending.length > 0) this.flushPending()
    this.ended = outcome
    this.notify?.()
    // A live connection holds no fiber: the machine releases it and goes on.
    this.core.settled(this)
  }

  private floor(delay: Duration.Input): void {
    const decoded = Duration.fromInput(delay)
    if (Option.isSome(decoded)) this.core.reconnectFloor = decoded.value
  }

  private setFlow(control: Overflow.FlowControl): void {
    if (this.active) this.core.buffer.setFlowControl(control)
  }

  /**
   * Fails with the error the driver reports; never succeeds (an end is not a failure). Made per use (the connect
   * and the resync race it) rather than held: a live connection does not need it.
   */
  awaitFailure(): Effect.Effect<never, ConnectorError.ConnectorError> {
    return Effect.flatMap(this.awaitEnd(), () => Effect.never)
  }

  /** Waits until the driver reports the end or failure of the connection. */
  private awaitEnd(): Effect.Effect<void, ConnectorError.ConnectorError> {
    return Effect.callback((resume) => {
      const check = () => {
        const outcome = this.ended
        if (outcome === undefined) return false
        this.notify = undefined
        resume(outcome._tag === "End" ? Effect.void : Effect.fail(outcome.error))
        return true
      }
      if (!check()) this.notify = check
      return Effect.sync(() => {
        this.notify = undefined
      })
    })
  }
}
