// Reports which partition Kafka's Java client puts each key in, so keel's own
// partitioner can be checked against it.
//
//   java PartitionCheck BOOTSTRAP TOPIC PARTITIONS < keys
//       Produces one record per key (value = key) with the default partitioner and
//       prints "<key>\t<partition>" from each acknowledged RecordMetadata.
//       Fails (exit 3) if TOPIC does not have PARTITIONS partitions.
//   java PartitionCheck --offline PARTITIONS < keys
//       Prints "<key>\t<partition>" computed as toPositive(murmur2(key)) % PARTITIONS,
//       the default partitioner's rule for keyed records; needs no broker.
//
// Keys are read one per line as UTF-8; empty lines are skipped. Output is in input order.
// Exit codes: 0 ok, 1 produce/broker error, 2 usage, 3 partition count mismatch.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

public final class PartitionCheck {
    private PartitionCheck() {}

    private static int usage() {
        System.err.println("usage: PartitionCheck BOOTSTRAP TOPIC PARTITIONS < keys");
        System.err.println("       PartitionCheck --offline PARTITIONS < keys");
        return 2;
    }

    private static List<String> readKeys() throws Exception {
        List<String> keys = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isEmpty()) {
                keys.add(line);
            }
        }
        return keys;
    }

    private static int parseCount(String s) {
        try {
            int n = Integer.parseInt(s);
            return n > 0 ? n : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static int offline(int partitions, List<String> keys, PrintStream out) {
        for (String key : keys) {
            byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
            out.println(key + "\t" + (Utils.toPositive(Utils.murmur2(bytes)) % partitions));
        }
        return 0;
    }

    private static int online(String bootstrap, String topic, int partitions, List<String> keys,
                              PrintStream out) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "keel-partition-check");

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            List<PartitionInfo> infos = producer.partitionsFor(topic);
            if (infos.size() != partitions) {
                System.err.println("PartitionCheck: topic " + topic + " has " + infos.size()
                        + " partitions, expected " + partitions);
                return 3;
            }
            List<Future<RecordMetadata>> sent = new ArrayList<>(keys.size());
            for (String key : keys) {
                byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
                sent.add(producer.send(new ProducerRecord<>(topic, bytes, bytes)));
            }
            for (int i = 0; i < keys.size(); i++) {
                RecordMetadata md = sent.get(i).get();
                out.println(keys.get(i) + "\t" + md.partition());
            }
        }
        return 0;
    }

    public static void main(String[] args) {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        int rc;
        try {
            if (args.length == 2 && args[0].equals("--offline")) {
                int n = parseCount(args[1]);
                rc = n < 0 ? usage() : offline(n, readKeys(), out);
            } else if (args.length == 3 && !args[0].startsWith("-")) {
                int n = parseCount(args[2]);
                rc = n < 0 ? usage() : online(args[0], args[1], n, readKeys(), out);
            } else {
                rc = usage();
            }
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            System.err.println("PartitionCheck: " + cause);
            rc = 1;
        }
        out.flush();
        System.exit(rc);
    }
}
