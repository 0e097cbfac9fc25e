package com.mobilesdk.core;

/**
 * The one error type of the core library: every message names the problem and, where there is
 * one, the fix. {@link #kind()} lets an app pick how to show it (the demo shows all as messages).
 */
public class SdkException extends RuntimeException {
    private static final long serialVersionUID = 1L;


    /** What went wrong, coarse enough for a UI to react on. */
    public enum Kind {
        /** manifest.json missing, not JSON, unknown schema / schema_version, or malformed. */
        MANIFEST,
        /**
         * A model file (.tflite / .pte), the vocabulary or the label bank named by the manifest is
         * missing or altered; or the export lacks the tower a use needs.
         */
        MODEL_FILE,
        /** An image cannot be decoded or has no pixels. */
        IMAGE,
        /** Bad text / vocabulary / tokenizer settings. */
        TEXT,
        /** A backend failed to load or run a model, or gave an output of the wrong shape. */
        BACKEND,
        /** Anything else that is the caller's fault (wrong array sizes, ...). */
        INVALID_ARGUMENT
    }

    private final Kind kind;

    public SdkException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public SdkException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
