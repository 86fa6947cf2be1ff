/**
 * What the tap writes, and the status table pinned below it on a terminal. Every line goes through `line`: when
 * the table is drawn on the same terminal, it is erased first and drawn again below the new lines a moment
 * later (as `docker stats` or a progress bar does), so no message line is ever overwritten.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Output } from "./Tap.ts"

/** One source in the status table. */
export interface Row {
  readonly source: string
  readonly state: string
  readonly total: number
  readonly dropped: number
  readonly reconnects: number
}

export interface Screen {
  /** Writes a line to stdout or stderr, waiting for `drain` when the stream is full (a slow pipe slows the tap). */
  readonly line: (stream: "stdout" | "stderr", text: string) => Effect.Effect<void>
  /** Draws the table of `rows` below the output, on a terminal, until the Scope closes or `stop`. */
  readonly statusTable: (rows: Effect.Effect<ReadonlyArray<Row>>) => Effect.Effect<void, never, Scope.Scope>
  /** Erases the table and stops drawing it (before a summary). */
  readonly stop: Effect.Effect<void>
}

/** How often the table's numbers are refreshed, and the window of its rates. */
const refresh = 250
const rateWindow = 1000

const write = (stream: Output["stdout"], text: string): Effect.Effect<void> =>
  Effect.suspend(() =>
    stream.write(text)
      ? Effect.void
      : Effect.callback<void>((resume) => {
          const done = () => resume(Effect.void)
          stream.once("drain", done)
          stream.once("error", done)
          return Effect.sync(() => {
            stream.removeListener("drain", done)
            stream.removeListener("error", done)
          })
        })
  )

const pad = (text: string, width: number, right = false) => (right ? text.padStart(width) : text.padEnd(width))

/** The table's lines: a header, one row per source with its rate; each cut to the terminal's width. */
export const renderTable = (rows: ReadonlyArray<Row>, rates: ReadonlyArray<number>, columns: number): Array<string> => {
  const header = ["SOURCE", "STATE", "TOTAL", "RATE/s", "DROPPED", "RECONNECTS"]
  const cells = rows.map((row, i) => [
    row.source,
    row.state,
    String(row.total),
    (rates[i] ?? 0).toFixed(1),
    String(row.dropped),
    String(row.reconnects)
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((cell) => cell[c]!.length)))
  // The source column gives way first on a narrow terminal.
  const others = widths.slice(1).reduce((a, b) => a + b + 2, 0)
  widths[0] = Math.max(12, Math.min(widths[0]!, columns - 1 - others - 2))
  const render = (cell: ReadonlyArray<string>) =>
    cell
      .map((text, c) => {
        const fitted = c === 0 && text.length > widths[0]! ? `${text.slice(0, widths[0]! - 1)}…` : text
        return pad(fitted, widths[c]!, c >= 2)
      })
      .join("  ")
  // A wrapped line would break the count of lines to erase: never wider than the terminal.
  return [render(header), ...cells.map(render)].map((line) => line.slice(0, Math.max(1, columns - 1)))
}

export const make = (output: Output, stats: boolean): Effect.Effect<Screen, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pinned = stats && output.stderr.isTTY === true
    // stdout on a terminal too: assume the same one, so its lines also pass above the table.
    const sharesTerminal = { stderr: true, stdout: output.stdout.isTTY === true }
    let drawn = 0
    let stopped = false
    /** The table as last rendered: drawn again below new lines at the end of the tick that wrote them. */
    let table: ReadonlyArray<string> = []
    let redrawScheduled = false

    const drawTable = () => {
      redrawScheduled = false
      if (stopped || table.length === 0) return
      erase()
      output.stderr.write(`${table.join("\n")}\n`)
      drawn = table.length
    }

    const erase = () => {
      if (drawn === 0) return
      // To the table's first line, then clear to the end of the screen.
      output.stderr.write(`\x1b[${drawn}F\x1b[J`)
      drawn = 0
    }

    const line = (stream: "stdout" | "stderr", text: string) =>
      Effect.suspend(() => {
        if (pinned && sharesTerminal[stream]) {
          erase()
          // Every line written in this tick goes above the table, which comes back below them at its end.
          if (!redrawScheduled && !stopped) {
            redrawScheduled = true
            setImmediate(drawTable)
          }
        }
        return write(output[stream], `${text}\n`)
      })

    const statusTable = (rows: Effect.Effect<ReadonlyArray<Row>>) =>
      Effect.gen(function* () {
        if (!pinned) return
        const previous = new Map<string, { total: number; at: number }>()
        let rates: Array<number> = []
        let lastRates = 0
        const draw = Effect.gen(function* () {
          const current = yield* rows
          const now = Date.now()
          if (now - lastRates >= rateWindow) {
            rates = current.map((row) => {
              const before = previous.get(row.source)
              previous.set(row.source, { total: row.total, at: now })
              return before === undefined ? 0 : ((row.total - before.total) * 1000) / Math.max(1, now - before.at)
            })
            lastRates = now
          }
          if (stopped) return
          const columns = (output.stderr as { columns?: number }).columns ?? 80
          table = renderTable(current, rates, columns)
          drawTable()
        })
        yield* draw
        yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(refresh), draw)))
        yield* Effect.addFinalizer(() => stop)
      })

    const stop = Effect.sync(() => {
      stopped = true
      erase()
    })

    return { line, statusTable, stop }
  })
