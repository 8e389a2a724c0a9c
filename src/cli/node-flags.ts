/**
 * The Node.js flags `serve` is started with, wherever it is started: `npm start`, the container
 * image's CMD, the systemd unit and the command's own first line (test/deploy checks each),
 * and the receive benchmark.
 *
 * `--max-semi-space-size=4` (MiB; V8's default here is 16): the young generation, where the
 * receive path's short-lived objects are made and die, is committed memory whether full or
 * not, and a larger one also let more garbage reach the old generation before a collection.
 * Measured on small instances over one association (2,000 at a time after the bench's warm-up):
 * peak RSS 156 to 121 MB after 4,000 instances, and 204 to 133-139 MB after 16,000, with images/s
 * unchanged within noise (CT over four associations too: 145 to 116 MB). V8 reads it only at
 * start-up (`v8.setFlagsFromString` later changed nothing), so it is a command-line flag.
 */
export const SERVE_NODE_FLAGS = ['--max-semi-space-size=4'] as const;
