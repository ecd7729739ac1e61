// kafkajs_produce.js BOOTSTRAP TOPIC ACKS KEY=VALUE...
// Sends the given keyed messages to TOPIC in one batch with kafkajs and
// prints the acknowledgement as one line of JSON on stdout:
//   [{"topicName":"t","partition":0,"errorCode":0,"baseOffset":"0",...}]
// ACKS is -1, 0 or 1. Exits 0 on success; on error prints it on stderr and
// exits 1.
'use strict'

const { Kafka, logLevel, Partitioners } = require('kafkajs')

const CONNECT_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10000
const RETRIES = 2

function parseMessages (args) {
  return args.map((kv) => {
    const eq = kv.indexOf('=')
    if (eq < 0) throw new Error(`message '${kv}' is not KEY=VALUE`)
    return { key: kv.slice(0, eq), value: kv.slice(eq + 1) }
  })
}

async function main (bootstrap, topic, acks, messages) {
  const kafka = new Kafka({
    clientId: 'chronik-it-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: RETRIES },
    logLevel: logLevel.ERROR
  })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const result = await producer.send({ topic, acks, messages })
    process.stdout.write(JSON.stringify(result) + '\n')
  } finally {
    await producer.disconnect()
  }
}

if (process.argv.length < 6) {
  process.stderr.write('usage: node kafkajs_produce.js HOST:PORT TOPIC ACKS KEY=VALUE...\n')
  process.exit(2)
}
const [bootstrap, topic, acks] = process.argv.slice(2, 5)
main(bootstrap, topic, Number(acks), parseMessages(process.argv.slice(5))).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs_produce: ${err.stack || err}\n`)
    process.exit(1)
  }
)
