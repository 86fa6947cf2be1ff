/**
 * @since 0.1.0
 */

/**
 * Postgres LISTEN/NOTIFY (pg) as a scoped, bounded, self-healing stream.
 *
 * @since 0.1.0
 */
export * as PgListen from "./PgListen.ts"
