// kafkajs_txn.js BOOTSTRAP TOPIC GROUP
// Drives kafkajs's transactional producer against partition 0 of TOPIC:
//   1. commits c1, c2;  2. aborts a1;  3. commits c3 with sendOffsets
//   (GROUP's offset of TOPIC-0 set to 7);  4. aborts sendOffsets of 99.
// Then reads TOPIC-0 from the beginning with a consumer at the default
// isolation (read committed) and with readUncommitted, each until c3 came
// (a1 precedes it in the log, so by then it would have come too), fetches
// GROUP's committed offsets, and prints one line of JSON:
//   {"committed":[...],"uncommitted":[...],"offset":"7"}
// Exits 0 once it printed; on error or after the deadline prints it on
// stderr and exits 1.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const CONNECT_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 20000
const CONSUME_DEADLINE_MS = 60000
const RETRIES = 5
const LAST = 'c3'

async function transaction (producer, topic, group, values, offset, commit) {
  const txn = await producer.transaction()
  if (values.length) await txn.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) })
  if (offset !== null) {
    await txn.sendOffsets({
      consumerGroupId: group,
      topics: [{ topic, partitions: [{ partition: 0, offset: String(offset) }] }]
    })
  }
  await (commit ? txn.commit() : txn.abort())
}

async function writeAll (kafka, topic, group) {
  const producer = kafka.producer({ transactionalId: 'kjs-txn', maxInFlightRequests: 1, idempotent: true })
  await producer.connect()
  try {
    await transaction(producer, topic, group, ['c1', 'c2'], null, true)
    await transaction(producer, topic, group, ['a1'], null, false)
    await transaction(producer, topic, group, [LAST], 7, true)
    await transaction(producer, topic, group, [], 99, false)
  } finally {
    await producer.disconnect()
  }
}

async function readUntilLast (kafka, topic, readUncommitted) {
  const consumer = kafka.consumer({
    groupId: `kjs-reader-${readUncommitted}`,
    readUncommitted,
    sessionTimeout: 10000,
    heartbeatInterval: 1000
  })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let finish
  const done = new Promise((resolve) => { finish = resolve })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      const v = message.value.toString()
      seen.push(v)
      if (v === LAST) finish()
    }
  })
  const timer = setTimeout(finish, CONSUME_DEADLINE_MS)
  await done
  clearTimeout(timer)
  await consumer.disconnect()
  if (!seen.includes(LAST)) throw new Error(`reader (readUncommitted=${readUncommitted}) saw only ${seen}`)
  return seen
}

async function committedOffset (kafka, topic, group) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return t.partitions.find((p) => p.partition === 0).offset
  } finally {
    await admin.disconnect()
  }
}

async function main (bootstrap, topic, group) {
  const kafka = new Kafka({
    clientId: 'chronik-it-kafkajs-txn',
    brokers: [bootstrap],
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: RETRIES },
    logLevel: logLevel.ERROR
  })
  await writeAll(kafka, topic, group)
  const committed = await readUntilLast(kafka, topic, false)
  const uncommitted = await readUntilLast(kafka, topic, true)
  const offset = await committedOffset(kafka, topic, group)
  process.stdout.write(JSON.stringify({ committed, uncommitted, offset }) + '\n')
}

if (process.argv.length !== 5) {
  process.stderr.write('usage: node kafkajs_txn.js HOST:PORT TOPIC GROUP\n')
  process.exit(2)
}
const [bootstrap, topic, group] = process.argv.slice(2)
main(bootstrap, topic, group).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs_txn: ${err.stack || err}\n`)
    process.exit(1)
  }
)
