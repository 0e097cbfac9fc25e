package android.widget;
public abstract class AdapterView<T extends Adapter> extends android.view.ViewGroup {
  public interface OnItemSelectedListener { void onItemSelected(AdapterView<?> parent, android.view.View view, int position, long id); void onNothingSelected(AdapterView<?> parent); }
  public AdapterView(android.content.Context c) { super(c); }
  public void setOnItemSelectedListener(OnItemSelectedListener l) { }
  public Object getSelectedItem() { return null; }
  public int getSelectedItemPosition() { return 0; }
  public void setSelection(int position) { }
}
