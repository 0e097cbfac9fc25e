package com.mobilesdk.core;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;

/**
 * Texts -> the int32 token ids the text tower takes, exactly as the model's Python tokenizer makes
 * them. The manifest's {@code model.tokenizer.kind} picks the implementation
 * ({@link #fromManifest}): {@code word} ({@link WordTokenizer}, the built-in model's) or
 * {@code clip_bpe} ({@link ClipBpeTokenizer}, open_clip's CLIP BPE); {@code hf} (a Hugging Face
 * tokenizer.json) is refused with a clear error.
 */
public interface Tokenizer {
    /** The manifest's name of this kind of tokenizer ("word", "clip_bpe"). */
    String kind();

    /** Length of every id array {@link #encode} returns. */
    int contextLength();

    /** One text -> int32 ids of length {@link #contextLength()}. */
    int[] encode(String text);

    /**
     * The ids {@link #encode} returns, from a text's tokens (both kinds' last rule): [sot] + the
     * first {@code count} of {@code tokens}, at most contextLength - 2 of them, + [eot],
     * right-padded with pad to contextLength (longer text still ends with eot).
     */
    static int[] frame(int[] tokens, int count, int contextLength, int sotId, int eotId, int padId) {
        int n = Math.min(count, contextLength - 2);
        int[] ids = new int[contextLength];
        Arrays.fill(ids, padId);
        ids[0] = sotId;
        System.arraycopy(tokens, 0, ids, 1, n);
        ids[n + 1] = eotId;
        return ids;
    }

    /** Opens a file of the export folder by its manifest path (a folder, the APK's assets, ...). */
    interface FileSource {
        /** The file's bytes; {@link FileNotFoundException} when it is not there. */
        byte[] read(String name) throws IOException;
    }

    /**
     * The tokenizer the manifest names, from the files it names (vocab.txt, the BPE merges file),
     * each checked against the manifest's sha256 / size / special ids.
     *
     * @throws SdkException TEXT for a tokenizer kind this app does not implement, MODEL_FILE for a
     *                      missing or altered file
     */
    static Tokenizer fromManifest(Manifest manifest, FileSource files) {
        Manifest.TokenizerSpec t = manifest.tokenizer;
        switch (t.kind) {
            case WordTokenizer.KIND:
                return WordTokenizer.fromManifest(manifest, read(files, t.vocabFile, "vocabulary"));
            case ClipBpeTokenizer.KIND:
                return ClipBpeTokenizer.fromManifest(manifest, read(files, t.mergesFile, "BPE merges file"));
            default:
                throw new SdkException(SdkException.Kind.TEXT, "the model's tokenizer kind '" + t.kind + "' is not "
                        + "supported by this app (it implements " + String.join(", ", Manifest.APP_TOKENIZER_KINDS)
                        + "); export a model whose tokenizer is one of these");
        }
    }

    /** {@link #fromManifest(Manifest, FileSource)} with the files read from an export folder. */
    static Tokenizer fromManifest(Manifest manifest, File folder) {
        return fromManifest(manifest, name -> {
            File f = new File(folder, name);
            if (!f.isFile()) {
                throw new FileNotFoundException(f.getPath());
            }
            return Files.readAllBytes(f.toPath());
        });
    }

    private static byte[] read(FileSource files, String name, String what) {
        try {
            return files.read(name);
        } catch (FileNotFoundException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, what + " " + name + " is missing; copy it from the "
                    + "export folder (the manifest's model.tokenizer names it)", e);
        } catch (IOException e) {
            throw new SdkException(SdkException.Kind.MODEL_FILE, "cannot read " + what + " " + name + ": "
                    + e.getMessage(), e);
        }
    }
}
