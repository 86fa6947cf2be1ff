/**
 * @since 0.1.0
 */

/**
 * Records of a streaming HTTP body (bytes, lines, NDJSON, SSE) as a scoped, bounded, self-healing stream.
 *
 * @since 0.1.0
 */
export * as HttpStream from "./HttpStream.ts"
