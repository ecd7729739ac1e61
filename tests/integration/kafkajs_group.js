// kafkajs_group.js BOOTSTRAP TOPIC GROUP COUNT
// Produces COUNT keyed messages to TOPIC with kafkajs, then consumes them
// with a kafkajs consumer group GROUP (from the beginning) until all COUNT
// have arrived, commits, leaves the group, and prints one line of JSON:
//   {"produced":N,"consumed":N,"distinct":N,"partitions":[...]}
// Exits 0 on success; on error or after the deadline prints it on stderr
// and exits 1.
'use strict'

const { Kafka, logLevel, Partitioners } = require('kafkajs')

const CONNECT_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10000
const CONSUME_DEADLINE_MS = 60000
const RETRIES = 5

async function produce (kafka, topic, count) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < count; i++) messages.push({ key: `k${i}`, value: `v${i}` })
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
}

async function consume (kafka, topic, group, count) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 })
  const seen = new Map()
  const partitions = new Set()
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let finish
  const done = new Promise((resolve) => { finish = resolve })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const v = message.value.toString()
      seen.set(v, (seen.get(v) || 0) + 1)
      partitions.add(partition)
      if (seen.size >= count) finish()
    }
  })
  const timer = setTimeout(finish, CONSUME_DEADLINE_MS)
  await done
  clearTimeout(timer)
  await consumer.disconnect() // commits what was consumed and leaves the group
  let consumed = 0
  for (const n of seen.values()) consumed += n
  return { consumed, distinct: seen.size, partitions: [...partitions].sort() }
}

async function main (bootstrap, topic, group, count) {
  const kafka = new Kafka({
    clientId: 'chronik-it-kafkajs-group',
    brokers: [bootstrap],
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: RETRIES },
    logLevel: logLevel.ERROR
  })
  await produce(kafka, topic, count)
  const r = await consume(kafka, topic, group, count)
  process.stdout.write(JSON.stringify({ produced: count, ...r }) + '\n')
  if (r.distinct < count) throw new Error(`consumed ${r.distinct} of ${count} messages before the deadline`)
}

if (process.argv.length !== 6) {
  process.stderr.write('usage: node kafkajs_group.js HOST:PORT TOPIC GROUP COUNT\n')
  process.exit(2)
}
const [bootstrap, topic, group, count] = process.argv.slice(2)
main(bootstrap, topic, group, Number(count)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs_group: ${err.stack || err}\n`)
    process.exit(1)
  }
)
