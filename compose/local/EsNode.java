import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.mapper.MapperExtrasPlugin;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.reindex.ReindexPlugin;
import org.elasticsearch.search.aggregations.matrix.MatrixAggregationPlugin;
import org.elasticsearch.transport.Netty4Plugin;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Single-node Elasticsearch for the mdde-stream local stack, started from Maven Central jars.
 *
 * <p>The Maven artifacts carry the server and the module jars but not the distribution's
 * launcher, so this class does the part of the launcher a test box needs: read
 * {@code <home>/config/elasticsearch.yml}, configure logging, and start a {@link Node} with the
 * module plugins taken from the classpath (Netty4 for HTTP/transport, reindex for
 * delete-by-query, mapper-extras and matrix-stats). Bootstrap checks, the security manager and
 * native memory locking are left out on purpose: the node is bound to 127.0.0.1 only.
 *
 * <p>Usage: {@code java -cp classes:lib/* EsNode <path.home>}. SIGTERM closes the node cleanly.
 */
public final class EsNode {

    private static final List<Class<? extends Plugin>> MODULES = List.of(
        Netty4Plugin.class,
        ReindexPlugin.class,
        MapperExtrasPlugin.class,
        MatrixAggregationPlugin.class
    );

    /** Node's plugin-taking constructor is protected; a subclass is the supported way in. */
    private static final class LocalNode extends Node {
        LocalNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private EsNode() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: EsNode <path.home>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        LogConfigurator.registerErrorListener();
        Settings initial = Settings.builder().put("path.home", home.toString()).build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            initial, Map.of(), home.resolve("config"), () -> "mdde-local");
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.configure(environment);

        Node node = new LocalNode(environment, MODULES);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "mdde-es-shutdown"));
        try {
            node.start();
        } catch (Exception | Error e) {
            // Without this the JVM could linger on non-daemon threads after a failed bind.
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("EsNode started: " + home);
        stopped.await();
    }
}
