// Enqueue a runs:ingest job exactly as the original worker's README shows it, with the documented
// prefix mapping (Node BullMQ refuses ':' in queue names: `runs:ingest` is queue `ingest` under
// prefix `bull:runs`). No options at all: no job id, no BullMQ priority, no attempts; the priority is
// only in the payload.
// Usage: node readme_producer.mjs REDIS_URL PREFIX JOB_JSON
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [redisUrl, prefix, jobJson] = process.argv.slice(2);
const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue("ingest", { connection, prefix: `${prefix}:runs` });

const job = await queue.add("process-run", JSON.parse(jobJson));

console.log(JSON.stringify({ id: job.id }));
await queue.close();
await connection.quit();
