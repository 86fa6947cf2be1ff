/**
 * One sleeping fiber per `Clock` for the watchdogs of every connection, instead of a fiber each: a connection's
 * watchdog is a deadline (a heap entry and a callback, ~100 B) where a fiber sleeping in a loop cost ~3 KB of heap
 * — the most of what a quiet connection costs. The sleeper sleeps on the handles' own `Clock`, so `TestClock`
 * drives it as it drove the fibers, and it ends when no deadline is left (nothing keeps the process alive).
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/** A deadline: `run` is called once the clock reaches `at`, unless it was cancelled. */
export interface Deadline {
  readonly at: number
  run: () => void
  cancelled: boolean
}

const spent = (): void => {}

export class Deadlines {
  /** A binary min-heap on `at`; cancelled entries are dropped when they reach the top. */
  private readonly heap: Array<Deadline> = []
  private live = 0
  private running = false
  private sleepingUntil = Number.POSITIVE_INFINITY
  private wake: (() => void) | undefined = undefined
  private readonly clock: Clock.Clock
  private readonly context: Context.Context<never>

  constructor(clock: Clock.Clock, context: Context.Context<never>) {
    this.clock = clock
    this.context = context
  }

  /** Whether the sleeper fiber is running (while a deadline is pending). */
  get sleeping(): boolean {
    return this.running
  }

  /** `run` at `at` on the clock (in its milliseconds). */
  add(at: number, run: () => void): Deadline {
    const deadline: Deadline = { at, run, cancelled: false }
    this.push(deadline)
    this.live++
    if (!this.running) {
      this.running = true
      // Whatever ends it (interrupted with its runtime), the next deadline starts a new one.
      Effect.runForkWith(this.context)(
        Effect.ensuring(
          this.loop,
          Effect.sync(() => {
            this.running = false
            this.wake = undefined
          })
        )
      )
    } else if (at < this.sleepingUntil) this.wakeUp()
    return deadline
  }

  cancel(deadline: Deadline): void {
    if (deadline.cancelled) return
    deadline.cancelled = true
    // Gone from the heap already when it ran; otherwise it leaves when it reaches the top, but what its callback
    // holds (a connection's closures) goes now.
    deadline.run = spent
    if (--this.live === 0) this.wakeUp()
  }

  private wakeUp(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private readonly loop: Effect.Effect<void> = Effect.suspend(() => {
    const now = this.clock.currentTimeMillisUnsafe()
    let failure: unknown
    while (this.heap.length > 0 && (this.heap[0]!.cancelled || this.heap[0]!.at <= now)) {
      const deadline = this.pop()
      if (deadline.cancelled) continue
      // Spent: a later `cancel` of it changes nothing.
      deadline.cancelled = true
      this.live--
      try {
        deadline.run()
      } catch (cause) {
        // A defect in one watchdog must not stop every other one: said, and the loop goes on.
        failure = cause
      }
    }
    if (failure !== undefined) {
      return Effect.andThen(Effect.logError("streamemit: a watchdog failed", failure), this.loop)
    }
    if (this.live === 0) {
      this.heap.length = 0
      this.running = false
      this.sleepingUntil = Number.POSITIVE_INFINITY
      return Effect.void
    }
    const until = this.heap[0]!.at
    this.sleepingUntil = until
    return Effect.flatMap(
      Effect.raceFirst(
        Effect.sleep(until - now),
        Effect.callback<void>((resume) => {
          this.wake = () => resume(Effect.void)
          return Effect.sync(() => {
            this.wake = undefined
          })
        })
      ),
      () => this.loop
    )
  })

  private push(deadline: Deadline): void {
    const heap = this.heap
    let i = heap.push(deadline) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= deadline.at) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = deadline
  }

  private pop(): Deadline {
    const heap = this.heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= heap.length) break
        const right = left + 1
        const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left
        if (heap[child]!.at >= last.at) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
    }
    return top
  }
}

const byClock = new WeakMap<Clock.Clock, Deadlines>()

/** The deadlines of `clock` (the first caller's services run its sleeper). */
export const deadlinesOf = (clock: Clock.Clock, context: Context.Context<never>): Deadlines => {
  let deadlines = byClock.get(clock)
  if (deadlines === undefined) {
    deadlines = new Deadlines(clock, context)
    byClock.set(clock, deadlines)
  }
  return deadlines
}
