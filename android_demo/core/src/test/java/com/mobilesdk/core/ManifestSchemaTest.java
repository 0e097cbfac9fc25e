package com.mobilesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.Gson;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The manifest's JSON Schema (mobile_sdk/schemas/manifest.schema.json, the file the Python SDK
 * validates with) and this reader agree: the golden manifest passes both, and every property the
 * schema requires, removed in turn, is refused here too, as are the schema's fixed values.
 */
public class ManifestSchemaTest {
    private static File schemaFile() {
        File f = new File(TestData.goldenDir(), "../../mobile_sdk/schemas/manifest.schema.json");
        assertTrue("schema not found: " + f.getAbsolutePath(), f.isFile());
        return f;
    }

    private static Map<String, Object> schema() {
        return Json.asObject(Json.parse(TestData.read(schemaFile())), "schema");
    }

    private static Map<String, Object> manifest() {
        return Json.asObject(Json.parse(TestData.manifestText()), "manifest");
    }

    @SuppressWarnings("unchecked")
    private static Object at(Object root, Object... path) {
        Object o = root;
        for (Object p : path) {
            o = p instanceof Integer ? ((List<Object>) o).get((Integer) p) : ((Map<String, Object>) o).get((String) p);
        }
        return o;
    }

    private static List<String> required(Map<String, Object> schemaNode) {
        List<String> out = new ArrayList<>();
        for (Object o : Json.asList(schemaNode.get("required"), "required")) {
            out.add((String) o);
        }
        return out;
    }

    private static void refused(Map<String, Object> m, String what) {
        String text = new Gson().toJson(m);
        try {
            Manifest.parse(text, what);
            fail("the reader accepted a manifest the schema refuses: " + what);
        } catch (SdkException e) {
            assertEquals(e.getMessage(), SdkException.Kind.MANIFEST, e.kind());
        }
    }

    @Test
    public void everyPropertyTheSchemaRequiresIsRequiredHere() {
        Map<String, Object> s = schema();
        Object props = at(s, "properties");
        Object[][] places = {  // {schema node path..., manifest object path...}
            {new Object[] {}, new Object[] {}},
            {new Object[] {"properties", "model"}, new Object[] {"model"}},
            {new Object[] {"properties", "model", "properties", "preprocessing"}, new Object[] {"model", "preprocessing"}},
            {new Object[] {"properties", "model", "properties", "tokenizer"}, new Object[] {"model", "tokenizer"}},
            {new Object[] {"properties", "artifacts", "items"}, new Object[] {"artifacts", 0}},
            {new Object[] {"$defs", "tensor"}, new Object[] {"artifacts", 0, "inputs", 0}},
        };
        assertTrue(props instanceof Map);
        int checked = 0;
        for (Object[] place : places) {
            Map<String, Object> node = Json.asObject(at(s, (Object[]) place[0]), "schema node");
            for (String key : required(node)) {
                Map<String, Object> m = manifest();
                Map<String, Object> target = Json.asObject(at(m, (Object[]) place[1]), "manifest node");
                assertTrue("golden manifest lacks " + key, target.containsKey(key));
                target.remove(key);
                refused(m, "without " + key);
                checked++;
            }
        }
        assertTrue("the schema requires " + checked + " properties", checked >= 15);
    }

    @Test
    public void theSchemasFixedValuesAreTheReadersToo() {
        Map<String, Object> s = schema();
        assertEquals(at(s, "properties", "schema", "const"), at(manifest(), "schema"));
        assertEquals(((Number) at(s, "properties", "schema_version", "const")).longValue(),
                (long) Manifest.SCHEMA_VERSION);
        Map<String, Object> m = manifest();
        Json.asObject(at(m, "artifacts", 0), "a").put("tower", "audio");
        refused(m, "tower audio");
        m = manifest();
        Json.asObject(at(m, "artifacts", 0), "a").put("default", "yes");
        refused(m, "default yes");
        m = manifest();
        Json.asObject(at(m, "artifacts", 0, "inputs", 0), "t").put("shape", List.of(1L, 0L));
        refused(m, "shape with a zero");
    }
}
