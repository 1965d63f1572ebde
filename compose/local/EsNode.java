import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Single-node Elasticsearch 9 for the mdde-stream local stack, started from Maven Central jars.
 *
 * <p>The Maven artifacts carry the server and the transport-netty4 module but not the
 * distribution's launcher, so this class does the part of the launcher a test box needs: read
 * {@code <home>/config/elasticsearch.yml}, configure logging, load the module bundles under
 * {@code <home>/modules} (each with its own class loader, as the distribution does) and start a
 * {@link Node}. Bootstrap checks, entitlements, native memory locking and the system-call
 * filter are left out on purpose: the node is bound to 127.0.0.1 only.
 *
 * <p>Usage: {@code java -cp classes:lib/* EsNode <path.home>}. SIGTERM closes the node cleanly.
 */
public final class EsNode {

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
        LogConfigurator.configure(environment, false);

        Node node;
        try {
            PluginsLoader plugins = PluginsLoader.createPluginsLoader(
                PluginsLoader.loadModulesBundles(environment.modulesDir(), false),
                PluginsLoader.loadPluginsBundles(environment.pluginsDir(), false),
                Map.of(),
                // The server runs from the class path (an unnamed module): it has no qualified
                // exports to hand to module layers.
                false);
            node = new Node(environment, plugins);
        } catch (Exception | Error e) {
            e.printStackTrace();
            System.exit(1);
            return;
        }
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
