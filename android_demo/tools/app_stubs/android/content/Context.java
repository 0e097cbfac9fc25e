package android.content;
import android.content.res.AssetManager; import android.content.res.Resources; import java.io.File;
public abstract class Context {
  public Context getApplicationContext() { return this; }
  public AssetManager getAssets() { return null; }
  public File getFilesDir() { return null; }
  public File getCacheDir() { return null; }
  public String getPackageName() { return null; }
  public ContentResolver getContentResolver() { return null; }
  public Resources getResources() { return null; }
}
