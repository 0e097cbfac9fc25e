package androidx.core.content;
public class FileProvider { public static android.net.Uri getUriForFile(android.content.Context context, String authority, java.io.File file) { return null; } }
