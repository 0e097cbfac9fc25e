package com.mobilesdk.demo;

import android.content.ActivityNotFoundException;
import android.graphics.Color;
import android.graphics.Typeface;
import android.net.Uri;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.os.SystemClock;
import android.text.InputType;
import android.util.Log;
import android.util.TypedValue;
import android.view.View;
import android.view.ViewGroup;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.EditText;
import android.widget.ImageView;
import android.widget.LinearLayout;
import android.widget.RadioButton;
import android.widget.RadioGroup;
import android.widget.ScrollView;
import android.widget.Spinner;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.core.content.FileProvider;
import com.mobilesdk.core.Backend;
import com.mobilesdk.core.Io;
import com.mobilesdk.core.LabelBank;
import com.mobilesdk.core.Manifest;
import com.mobilesdk.core.Pipeline;
import com.mobilesdk.core.Preprocess;
import com.mobilesdk.core.SdkException;
import com.mobilesdk.core.Tokenizer;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The demo: one screen with three sections (zero-shot classification, text-to-image search,
 * latency) and a backend switch (LiteRT / ExecuTorch, with the manifest's precisions). Zero-shot
 * classification embeds the prompts with the text tower, or scores against the export's label
 * bank (label_bank.json: class embeddings made at export), which needs the image tower alone: an
 * export without a text tower classifies through the bank only, one with both offers the bank as
 * an entry of the task chooser. All model work runs on one worker thread; every error reaches the
 * user as a message, never a crash.
 */
public class MainActivity extends AppCompatActivity {
    private static final String TAG = "mobile-sdk-demo";
    private static final String[] PLATFORMS = {"tflite", "executorch"};
    private static final String[] PLATFORM_NAMES = {"LiteRT (.tflite)", "ExecuTorch (.pte, XNNPACK)"};
    private static final int THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    private static final int WARMUP = 3, RUNS = 20;
    private static final String PROMPTS_HINT = "Labels: one per line, \"label: prompt\" (or just the prompt)";

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final Handler ui = new Handler(Looper.getMainLooper());
    private ModelStore store;

    // written on the worker, read on the UI thread after the load finished
    private volatile Manifest manifest;
    /** null when the export ships no text tower (classification goes through the label bank). */
    private volatile Tokenizer tokenizer;
    /** The export's label bank, or null (none, or it failed to load: labelBankError). */
    private volatile LabelBank labelBank;
    private volatile String labelBankError;
    private volatile String loadError;
    private volatile List<String> gallery = Collections.emptyList();

    // worker thread only
    private Backend backend;
    private String backendKey;
    private Pipeline pipeline;
    private long backendLoadMs;
    private final Map<String, List<float[]>> galleryEmbeddings = new HashMap<>();
    private final List<byte[]> galleryPixels = new ArrayList<>();

    // UI thread only
    private byte[] currentPixels;
    private String currentName;
    private int sampleIndex = -1;
    private Uri cameraUri;
    /** The task chooser's entry for the label bank, or null when there is no bank. */
    private String bankEntry;

    private TextView modelInfo, status, classifyResult, searchInfo, latencyResult, labelsHint;
    private Spinner platformSpinner, precisionSpinner, taskSpinner;
    private ImageView preview;
    private EditText labels, query;
    private LinearLayout searchResults;
    private View classifySection, searchSection, latencySection;
    private final List<View> actions = new ArrayList<>();

    private final ActivityResultLauncher<String> pickImage = registerForActivityResult(
            new ActivityResultContracts.GetContent(), uri -> {
                if (uri != null) {
                    String name = uri.getLastPathSegment() == null ? "picked image" : uri.getLastPathSegment();
                    loadImage(name, () -> readUri(uri));
                }
            });

    private final ActivityResultLauncher<Uri> takePhoto = registerForActivityResult(
            new ActivityResultContracts.TakePicture(), saved -> {
                Uri u = cameraUri;
                if (Boolean.TRUE.equals(saved) && u != null) {
                    loadImage("camera photo", () -> readUri(u));
                }
            });

    /** Work for the worker thread that may throw. */
    private interface Task {
        void run() throws Exception;
    }

    private interface BytesSource {
        byte[] get() throws IOException;
    }

    // ------------------------------------------------------------------------------ UI

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        store = new ModelStore(this);
        setContentView(buildUi());
        setBusy(true);
        worker.execute(this::loadModel);
    }

    @Override
    protected void onDestroy() {
        super.onDestroy();
        worker.execute(this::closeBackend);
        worker.shutdown();
    }

    private int dp(int v) {
        return Math.round(TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, v, getResources().getDisplayMetrics()));
    }

    private TextView text(String s, int sp, boolean bold) {
        TextView t = new TextView(this);
        t.setText(s);
        t.setTextSize(TypedValue.COMPLEX_UNIT_SP, sp);
        if (bold) {
            t.setTypeface(Typeface.DEFAULT_BOLD);
        }
        t.setPadding(0, dp(4), 0, dp(4));
        return t;
    }

    private Button button(String label, View.OnClickListener l) {
        Button b = new Button(this);
        b.setText(label);
        b.setAllCaps(false);
        b.setOnClickListener(l);
        actions.add(b);
        return b;
    }

    private LinearLayout row(View... views) {
        LinearLayout r = new LinearLayout(this);
        r.setOrientation(LinearLayout.HORIZONTAL);
        for (View v : views) {
            r.addView(v, new LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f));
        }
        return r;
    }

    private LinearLayout column() {
        LinearLayout c = new LinearLayout(this);
        c.setOrientation(LinearLayout.VERTICAL);
        return c;
    }

    private View buildUi() {
        LinearLayout root = column();
        root.setPadding(dp(16), dp(12), dp(16), dp(16));

        modelInfo = text("Loading the model…", 14, false);
        root.addView(modelInfo);

        platformSpinner = new Spinner(this);
        platformSpinner.setAdapter(adapter(java.util.Arrays.asList(PLATFORM_NAMES)));
        precisionSpinner = new Spinner(this);
        root.addView(text("Backend", 14, true));
        root.addView(row(platformSpinner, precisionSpinner));
        platformSpinner.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                refreshPrecisions();
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });
        precisionSpinner.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                prepareBackend();
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });

        status = text("", 14, false);
        root.addView(status);

        RadioGroup tabs = new RadioGroup(this);
        tabs.setOrientation(RadioGroup.HORIZONTAL);
        String[] tabNames = {"Classify", "Search", "Latency"};
        for (int i = 0; i < tabNames.length; i++) {
            RadioButton rb = new RadioButton(this);
            rb.setId(View.generateViewId());
            rb.setText(tabNames[i]);
            rb.setTag(i);
            tabs.addView(rb);
            if (i == 0) {
                rb.setChecked(true);
            }
        }
        root.addView(tabs);

        // zero-shot classification
        LinearLayout cls = column();
        preview = new ImageView(this);
        preview.setAdjustViewBounds(true);
        preview.setScaleType(ImageView.ScaleType.FIT_CENTER);
        preview.setBackgroundColor(Color.LTGRAY);
        preview.setContentDescription("the model's input image");
        cls.addView(preview, new LinearLayout.LayoutParams(dp(192), dp(192)));
        cls.addView(row(button("Pick image", v -> pickImage.launch("image/*")),
                button("Take photo", v -> takePhoto()),
                button("Sample", v -> nextSample())));
        taskSpinner = new Spinner(this);
        taskSpinner.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                fillLabels();
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });
        labelsHint = text(PROMPTS_HINT, 14, true);
        cls.addView(labelsHint);
        cls.addView(taskSpinner);
        labels = new EditText(this);
        labels.setInputType(InputType.TYPE_CLASS_TEXT | InputType.TYPE_TEXT_FLAG_MULTI_LINE);
        labels.setMinLines(4);
        cls.addView(labels);
        cls.addView(button("Classify", v -> classify()));
        classifyResult = text("", 14, false);
        classifyResult.setTypeface(Typeface.MONOSPACE);
        cls.addView(classifyResult);
        classifySection = cls;

        // text-to-image search
        LinearLayout search = column();
        query = new EditText(this);
        query.setHint("e.g. a small red circle");
        query.setText("a red circle");
        query.setInputType(InputType.TYPE_CLASS_TEXT);
        search.addView(query);
        search.addView(button("Search the gallery", v -> search()));
        searchInfo = text("", 14, false);
        search.addView(searchInfo);
        searchResults = column();
        search.addView(searchResults);
        searchSection = search;

        // latency
        LinearLayout lat = column();
        lat.addView(text("Median / min over " + RUNS + " runs after " + WARMUP + " warm-up runs, batch 1, "
                + THREADS + " threads, the current image (or the first gallery image).", 14, false));
        lat.addView(button("Measure both backends", v -> measure()));
        latencyResult = text("", 14, false);
        latencyResult.setTypeface(Typeface.MONOSPACE);
        lat.addView(latencyResult);
        latencySection = lat;

        root.addView(cls);
        root.addView(search);
        root.addView(lat);
        search.setVisibility(View.GONE);
        lat.setVisibility(View.GONE);
        tabs.setOnCheckedChangeListener((group, checkedId) -> {
            View b = group.findViewById(checkedId);
            int tab = b == null ? 0 : (Integer) b.getTag();
            classifySection.setVisibility(tab == 0 ? View.VISIBLE : View.GONE);
            searchSection.setVisibility(tab == 1 ? View.VISIBLE : View.GONE);
            latencySection.setVisibility(tab == 2 ? View.VISIBLE : View.GONE);
        });

        ScrollView scroll = new ScrollView(this);
        scroll.addView(root);
        return scroll;
    }

    private ArrayAdapter<String> adapter(List<String> items) {
        ArrayAdapter<String> a = new ArrayAdapter<>(this, android.R.layout.simple_spinner_item, new ArrayList<>(items));
        a.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
        return a;
    }

    private void setBusy(boolean busy) {
        for (View v : actions) {
            v.setEnabled(!busy);
        }
        platformSpinner.setEnabled(!busy);
        precisionSpinner.setEnabled(!busy);
    }

    private void showStatus(String message, boolean error) {
        ui.post(() -> {
            status.setText(message);
            status.setTextColor(error ? Color.rgb(0xC6, 0x28, 0x28) : Color.rgb(0x2E, 0x7D, 0x32));
        });
    }

    private String selectedPlatform() {
        int i = platformSpinner.getSelectedItemPosition();
        return PLATFORMS[i < 0 ? 0 : i];
    }

    private String selectedPrecision() {
        Object p = precisionSpinner.getSelectedItem();
        return p == null ? null : p.toString();
    }

    private static String platformName(String platform) {
        return platform.equals("tflite") ? "LiteRT" : "ExecuTorch";
    }

    // ------------------------------------------------------------------------------ worker plumbing

    /** Runs {@code task} on the worker; errors become messages. */
    private void runTask(String what, Task task) {
        setBusy(true);
        worker.execute(() -> {
            try {
                task.run();
            } catch (SdkException e) {
                Log.w(TAG, what + ": " + e.getMessage(), e);
                showStatus(e.getMessage(), true);
            } catch (Throwable t) { // a runtime's own exception or a missing native library: still a message
                Log.e(TAG, what, t);
                showStatus(what + " failed: " + t, true);
            } finally {
                ui.post(() -> setBusy(false));
            }
        });
    }

    private void requireModel() {
        if (manifest == null) {
            throw new SdkException(SdkException.Kind.MANIFEST, loadError != null ? loadError : "the model is not loaded yet");
        }
    }

    /** Worker: manifest, tokenizer (when there is a text tower), label bank and gallery list; then fills the UI. */
    private void loadModel() {
        try {
            Manifest m = store.loadManifest();
            m.preprocessing.requireSupported(); // a resize rule the app lacks fails here, named
            Tokenizer t = m.hasTextTower() ? store.loadTokenizer(m) : null;
            LabelBank bank = null;
            String bankError = null;
            if (m.labelBank != null) {
                try {
                    bank = store.loadLabelBank(m);
                } catch (SdkException e) {
                    if (t == null) {
                        throw e; // no text tower either: nothing to classify with
                    }
                    bankError = e.getMessage(); // prompts still work; say why the bank is not offered
                    Log.w(TAG, "label bank", e);
                }
            }
            gallery = store.galleryAssets();
            manifest = m;
            tokenizer = t;
            labelBank = bank;
            labelBankError = bankError;
            ui.post(this::onModelLoaded);
        } catch (SdkException e) {
            loadError = e.getMessage();
            Log.w(TAG, "load", e);
            ui.post(() -> {
                modelInfo.setText("No model loaded");
                showStatus(e.getMessage(), true);
                setBusy(false);
            });
        } catch (Throwable t) {
            loadError = "cannot load the model: " + t;
            Log.e(TAG, "load", t);
            ui.post(() -> {
                showStatus(loadError, true);
                setBusy(false);
            });
        }
    }

    private void onModelLoaded() {
        Manifest m = manifest;
        LabelBank bank = labelBank;
        String text = tokenizer != null ? m.tokenizer.kind + " tokenizer" : "image tower only (no text tower)";
        String bankInfo = bank != null ? String.format(Locale.ROOT, ", label bank of %d classes", bank.size())
                : labelBankError != null ? "\nlabel bank not loaded: " + labelBankError : "";
        modelInfo.setText(String.format(Locale.ROOT, "%s: %d-d embeddings, %dx%d input, %s, %d artifacts, "
                + "%d gallery images%s", m.modelName.isEmpty() ? "model" : m.modelName, m.embedDim, m.imageSize,
                m.imageSize, text, m.artifacts.size(), gallery.size(), bankInfo));
        // the task chooser: the manifest's prompt tasks (with a text tower), then the label bank
        List<String> entries = new ArrayList<>();
        if (tokenizer != null) {
            entries.addAll(m.tasks.keySet());
        }
        bankEntry = bank == null ? null : String.format(Locale.ROOT, "label bank (%d classes)", bank.size());
        if (bankEntry != null) {
            entries.add(bankEntry);
        }
        taskSpinner.setAdapter(adapter(entries));
        if (!entries.isEmpty()) {
            taskSpinner.setSelection(tokenizer != null && !m.tasks.isEmpty() ? entries.indexOf(m.defaultTask())
                    : entries.indexOf(bankEntry));
        } else {
            classifyResult.setText(Pipeline.noZeroShot(m).getMessage());
        }
        fillLabels();
        setBusy(false);
        refreshPrecisions();
        if (!gallery.isEmpty()) {
            nextSample();
        }
    }

    private void refreshPrecisions() {
        Manifest m = manifest;
        if (m == null) {
            return;
        }
        String platform = selectedPlatform();
        List<String> ps = m.imagePrecisions(platform); // with or without the text tower
        precisionSpinner.setAdapter(adapter(ps));
        if (ps.isEmpty()) {
            showStatus("manifest.json lists no " + platformName(platform) + " artifacts (image tower); export them "
                    + "with `mobile-sdk export`", true);
            return;
        }
        precisionSpinner.setSelection(ps.indexOf(m.defaultPrecision(platform)));
        prepareBackend();
    }

    /** Whether the task chooser's selection is the label bank. */
    private boolean bankSelected() {
        Object task = taskSpinner.getSelectedItem();
        return bankEntry != null && task != null && bankEntry.equals(task.toString());
    }

    private void fillLabels() {
        Manifest m = manifest;
        Object task = taskSpinner.getSelectedItem();
        if (m == null || task == null) {
            return;
        }
        LabelBank bank = labelBank;
        if (bankSelected() && bank != null) { // the bank's classes: fixed at export, shown read-only
            labelsHint.setText("Classes of the export's label bank (embedded at export"
                    + (bank.templates.isEmpty() ? "" : " with " + bank.templates) + "; no text tower runs)");
            labels.setText(String.join("\n", bank.classes));
            labels.setEnabled(false);
            return;
        }
        labelsHint.setText(PROMPTS_HINT);
        labels.setEnabled(true);
        Manifest.Task t = m.tasks.get(task.toString());
        if (t == null) {
            return;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < t.labels.size(); i++) {
            b.append(t.labels.get(i)).append(": ").append(t.prompts.get(i)).append('\n');
        }
        labels.setText(b.toString().trim());
    }

    /** Worker: the pipeline of the selected backend, loading it (and closing the previous one) if needed. */
    private Pipeline pipelineFor(String platform, String precision) {
        requireModel();
        if (precision == null) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "no " + platformName(platform) + " artifacts to run");
        }
        String key = platform + "/" + precision;
        if (pipeline != null && key.equals(backendKey)) {
            return pipeline;
        }
        closeBackend();
        long t0 = SystemClock.elapsedRealtime();
        Backend b = createBackend(platform, precision);
        backendLoadMs = SystemClock.elapsedRealtime() - t0;
        backend = b;
        backendKey = key;
        pipeline = new Pipeline(manifest, tokenizer, b);
        return pipeline;
    }

    private Backend createBackend(String platform, String precision) {
        try {
            return platform.equals("tflite")
                    ? new LiteRtBackend(manifest, precision, store, THREADS)
                    : new ExecuTorchBackend(manifest, precision, store);
        } catch (SdkException e) {
            throw e;
        } catch (Throwable t) { // e.g. UnsatisfiedLinkError on an ABI the runtime does not ship
            throw new SdkException(SdkException.Kind.BACKEND, platformName(platform) + " could not start: " + t, t);
        }
    }

    private void closeBackend() {
        if (backend != null) {
            try {
                backend.close();
            } catch (Throwable t) {
                Log.w(TAG, "close", t);
            }
        }
        backend = null;
        backendKey = null;
        pipeline = null;
    }

    // ------------------------------------------------------------------------------ actions

    private void prepareBackend() {
        if (manifest == null) {
            return;
        }
        String platform = selectedPlatform(), precision = selectedPrecision();
        runTask("loading " + platformName(platform), () -> {
            Pipeline p = pipelineFor(platform, precision);
            showStatus(p.backend().name() + " ready (loaded in " + backendLoadMs + " ms)", false);
        });
    }

    private byte[] readUri(Uri uri) throws IOException {
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            if (in == null) {
                throw new IOException("no data for " + uri);
            }
            return Io.readAll(in);
        }
    }

    private void loadImage(String name, BytesSource source) {
        runTask("reading " + name, () -> {
            requireModel();
            byte[] bytes;
            try {
                bytes = source.get();
            } catch (IOException e) {
                throw new SdkException(SdkException.Kind.IMAGE, "cannot read image " + name + ": " + e.getMessage(), e);
            }
            byte[] px = Preprocess.preprocess(AndroidImages.decode(bytes, name), manifest.preprocessing);
            ui.post(() -> {
                currentPixels = px;
                currentName = name;
                preview.setImageBitmap(AndroidImages.toBitmap(px, manifest.imageSize));
                classifyResult.setText("");
                showStatus("image: " + name, false);
            });
        });
    }

    private void nextSample() {
        List<String> g = gallery;
        if (g.isEmpty()) {
            showStatus("no gallery images bundled (golden/*.png of the export)", true);
            return;
        }
        sampleIndex = (sampleIndex + 1) % g.size();
        String path = g.get(sampleIndex);
        loadImage(path.substring(path.lastIndexOf('/') + 1), () -> store.readAsset(path));
    }

    private void takePhoto() {
        try {
            File dir = new File(getCacheDir(), "camera");
            if (!dir.isDirectory() && !dir.mkdirs()) {
                throw new IOException("cannot create " + dir);
            }
            cameraUri = FileProvider.getUriForFile(this, getPackageName() + ".fileprovider", new File(dir, "photo.jpg"));
            takePhoto.launch(cameraUri);
        } catch (ActivityNotFoundException e) {
            showStatus("no camera app on this device", true);
        } catch (IOException | RuntimeException e) {
            showStatus("cannot start the camera: " + e.getMessage(), true);
        }
    }

    private void classify() {
        byte[] px = currentPixels;
        if (px == null) {
            showStatus("pick, capture or sample an image first", true);
            return;
        }
        Manifest m = manifest;
        if (m != null && tokenizer == null && labelBank == null) { // no text tower, no label bank
            showStatus(Pipeline.noZeroShot(m).getMessage(), true);
            return;
        }
        LabelBank bank = bankSelected() ? labelBank : null;
        if (bank != null) {
            classifyWithBank(px, bank);
            return;
        }
        List<String> names = new ArrayList<>(), prompts = new ArrayList<>();
        for (String line : labels.getText().toString().split("\n")) {
            String l = line.trim();
            if (l.isEmpty()) {
                continue;
            }
            int colon = l.indexOf(':');
            String label = colon > 0 ? l.substring(0, colon).trim() : l;
            String prompt = colon > 0 ? l.substring(colon + 1).trim() : l;
            names.add(label);
            prompts.add(prompt.isEmpty() ? label : prompt);
        }
        if (names.isEmpty()) {
            showStatus("enter at least one label", true);
            return;
        }
        String platform = selectedPlatform(), precision = selectedPrecision(), image = currentName;
        runTask("classification", () -> {
            Pipeline p = pipelineFor(platform, precision);
            Pipeline.Classification c = p.classify(px, names, prompts);
            StringBuilder b = new StringBuilder();
            for (int k = 0; k < c.ranking.length; k++) {
                int i = c.ranking[k];
                b.append(String.format(Locale.ROOT, "%2d. %-14s %6.2f%%  (score %.3f)%n", k + 1, c.labels.get(i),
                        100 * c.probs[i], c.scores[i]));
            }
            b.append(String.format(Locale.ROOT, "%s on %s: image tower %.1f ms, text tower %.1f ms for %d prompts",
                    p.backend().name(), image, c.imageNanos / 1e6, c.textNanos / 1e6, names.size()));
            ui.post(() -> classifyResult.setText(b.toString()));
            showStatus("best: " + c.best(), false);
        });
    }

    /** Zero-shot against the export's label bank: the image tower only. */
    private void classifyWithBank(byte[] px, LabelBank bank) {
        String platform = selectedPlatform(), precision = selectedPrecision(), image = currentName;
        runTask("classification", () -> {
            Pipeline p = pipelineFor(platform, precision);
            Pipeline.Classification c = p.classify(px, bank);
            StringBuilder b = new StringBuilder();
            for (int k = 0; k < c.ranking.length; k++) {
                int i = c.ranking[k];
                b.append(String.format(Locale.ROOT, "%2d. %-14s %6.2f%%  (score %.3f)%n", k + 1, c.labels.get(i),
                        100 * c.probs[i], c.scores[i]));
            }
            b.append(String.format(Locale.ROOT, "%s on %s: image tower %.1f ms; label bank of %d classes (no text "
                    + "tower run)", p.backend().name(), image, c.imageNanos / 1e6, bank.size()));
            ui.post(() -> classifyResult.setText(b.toString()));
            showStatus("best: " + c.best(), false);
        });
    }

    /** Worker: gallery pixels (once) and their embeddings for the current backend (once per backend). */
    private List<float[]> galleryEmbeddingsFor(Pipeline p) {
        if (galleryPixels.isEmpty()) {
            for (String path : gallery) {
                galleryPixels.add(Preprocess.preprocessPng(store.readAsset(path), manifest.preprocessing));
            }
        }
        List<float[]> embs = galleryEmbeddings.get(backendKey);
        if (embs == null) {
            embs = new ArrayList<>();
            for (byte[] px : galleryPixels) {
                embs.add(p.encodeImage(px).embedding);
            }
            galleryEmbeddings.put(backendKey, embs);
        }
        return embs;
    }

    private void search() {
        String q = query.getText().toString();
        String platform = selectedPlatform(), precision = selectedPrecision();
        if (gallery.isEmpty()) {
            showStatus("no gallery images bundled (golden/*.png of the export)", true);
            return;
        }
        runTask("search", () -> {
            Pipeline p = pipelineFor(platform, precision);
            if (!p.hasTextTower()) { // before the gallery is embedded for nothing
                throw p.noTextTower("text-to-image search");
            }
            List<float[]> embs = galleryEmbeddingsFor(p);
            Pipeline.Search s = p.search(q, embs);
            List<String> names = gallery;
            ui.post(() -> {
                searchInfo.setText(String.format(Locale.ROOT, "\"%s\" with %s: text tower %.1f ms, %d images ranked",
                        q, p.backend().name(), s.textNanos / 1e6, s.ranking.length));
                searchResults.removeAllViews();
                for (int k = 0; k < s.ranking.length; k++) {
                    int i = s.ranking[k];
                    ImageView iv = new ImageView(this);
                    iv.setImageBitmap(AndroidImages.toBitmap(galleryPixels.get(i), manifest.imageSize));
                    TextView t = text(String.format(Locale.ROOT, "#%d  %s\nscore %.3f", k + 1,
                            names.get(i).substring(names.get(i).lastIndexOf('/') + 1), s.scores[i]), 14, false);
                    t.setPadding(dp(12), 0, 0, 0);
                    LinearLayout r = new LinearLayout(this);
                    r.setOrientation(LinearLayout.HORIZONTAL);
                    r.setPadding(0, dp(4), 0, dp(4));
                    r.addView(iv, new LinearLayout.LayoutParams(dp(72), dp(72)));
                    r.addView(t);
                    searchResults.addView(r);
                }
            });
        });
    }

    private void measure() {
        String current = selectedPlatform(), currentPrecision = selectedPrecision();
        byte[] px0 = currentPixels;
        runTask("latency", () -> {
            requireModel();
            byte[] px = px0;
            if (px == null) {
                if (gallery.isEmpty()) {
                    throw new SdkException(SdkException.Kind.IMAGE, "pick an image first (no gallery bundled)");
                }
                px = Preprocess.preprocessPng(store.readAsset(gallery.get(0)), manifest.preprocessing);
            }
            String text = manifest.tasks.isEmpty() ? "a photo"
                    : manifest.tasks.get(manifest.defaultTask()).prompts.get(0);
            StringBuilder b = new StringBuilder();
            for (String platform : PLATFORMS) {
                String name = platformName(platform);
                try {
                    List<String> ps = manifest.imagePrecisions(platform);
                    if (ps.isEmpty()) {
                        b.append(name).append(": no artifacts in manifest.json\n");
                        continue;
                    }
                    String precision = platform.equals(current) && currentPrecision != null
                            ? currentPrecision : manifest.defaultPrecision(platform);
                    Pipeline p = pipelineFor(platform, precision);
                    Pipeline.Latency l = p.benchmark(px, text, WARMUP, RUNS);
                    b.append(String.format(Locale.ROOT, "%s%n  load   %6d ms%n  image  %6.2f ms (min %.2f)%n",
                            p.backend().name(), backendLoadMs, l.imageMedianMs, l.imageMinMs));
                    b.append(Double.isNaN(l.textMedianMs) ? "  text   - (no text tower)\n" : String.format(Locale.ROOT,
                            "  text   %6.2f ms (min %.2f)%n", l.textMedianMs, l.textMinMs));
                } catch (SdkException e) {
                    b.append(name).append(": ").append(e.getMessage()).append('\n');
                } catch (Throwable t) {
                    Log.e(TAG, "latency " + name, t);
                    b.append(name).append(": failed: ").append(t).append('\n');
                }
                String partial = b.toString();
                ui.post(() -> latencyResult.setText(partial));
            }
            if (currentPrecision != null) { // leave the selected backend loaded
                pipelineFor(current, currentPrecision);
            }
            showStatus("latency measured", false);
        });
    }
}
