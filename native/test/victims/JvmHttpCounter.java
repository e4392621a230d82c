// An ordinary JVM HTTP server (com.sun.net.httpserver, started as `java -cp <dir> JvmHttpCounter <workdir>`):
// every request to / is counted and recorded in a HashMap (key k<n> → n*n), and answered "<hits> <sum of
// the map's values>"; /ticks answers how often a ScheduledExecutorService has fired (its timer thread);
// /gc runs System.gc() (a safepoint of every thread) and answers the hit count. The sum is computed by a
// method the JIT compiles at start (it is called a hundred thousand times before the server starts).
// Each hit is logged on stdout. The port goes to <workdir>/port, the pid to <workdir>/ready.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

public class JvmHttpCounter {
    static int hits = 0;
    static final Map<String, Long> squares = new HashMap<>();
    static final AtomicLong ticks = new AtomicLong();

    static long sum(Map<String, Long> m) {
        long s = 0;
        for (long v : m.values()) s += v;
        return s;
    }

    static void answer(HttpExchange ex, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(200, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
    }

    static void put(Path workdir, String name, String text) throws IOException {
        Path tmp = workdir.resolve("." + name + ".tmp");
        Files.writeString(tmp, text);
        Files.move(tmp, workdir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
    }

    public static void main(String[] args) throws Exception {
        Path workdir = Path.of(args[0]);
        Map<String, Long> warm = new HashMap<>(Map.of("a", 1L, "b", 2L));
        long w = 0;
        for (int i = 0; i < 100_000; i++) w += sum(warm);
        if (w != 300_000) throw new IllegalStateException("warm-up sum " + w);
        Executors.newSingleThreadScheduledExecutor().scheduleAtFixedRate(ticks::incrementAndGet, 10, 10, TimeUnit.MILLISECONDS);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", ex -> {
            String body;
            synchronized (JvmHttpCounter.class) {
                hits++;
                squares.put("k" + hits, (long) hits * hits);
                body = hits + " " + sum(squares) + "\n";
                System.out.println("hit " + hits);
            }
            answer(ex, body);
        });
        server.createContext("/ticks", ex -> answer(ex, ticks.get() + "\n"));
        server.createContext("/gc", ex -> {
            System.gc();
            int n;
            synchronized (JvmHttpCounter.class) {
                n = hits;
            }
            answer(ex, n + "\n");
        });
        server.start();
        put(workdir, "port", String.valueOf(server.getAddress().getPort()));
        put(workdir, "ready", String.valueOf(ProcessHandle.current().pid()));
    }
}
