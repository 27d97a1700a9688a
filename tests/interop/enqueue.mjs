// Enqueue one runs:ingest job exactly as a Node producer of the original system would.
// Usage: node enqueue.mjs REDIS_URL PREFIX JOB_JSON [JOB_ID]
// Node BullMQ refuses ':' in queue names, so the queue `runs:ingest` under prefix `bull` is
// addressed as queue `ingest` under prefix `bull:runs` (same Redis keys).
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [redisUrl, prefix, jobJson, jobId] = process.argv.slice(2);
const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue("ingest", { connection, prefix: `${prefix}:runs` });
const job = await queue.add("ingest", JSON.parse(jobJson), {
  jobId,
  priority: 2,
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
});
console.log(JSON.stringify({ id: job.id }));
await queue.close();
await connection.quit();
