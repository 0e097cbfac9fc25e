package androidx.appcompat.app;
public class AppCompatActivity extends android.content.Context {
  protected void onCreate(android.os.Bundle savedInstanceState) { }
  protected void onDestroy() { }
  public void setContentView(android.view.View view) { }
  public final <I, O> androidx.activity.result.ActivityResultLauncher<I> registerForActivityResult(
      androidx.activity.result.contract.ActivityResultContract<I, O> contract, androidx.activity.result.ActivityResultCallback<O> callback) { return null; }
}
