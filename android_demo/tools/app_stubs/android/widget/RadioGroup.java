package android.widget;
public class RadioGroup extends LinearLayout {
  public interface OnCheckedChangeListener { void onCheckedChanged(RadioGroup group, int checkedId); }
  public RadioGroup(android.content.Context c) { super(c); }
  public void setOnCheckedChangeListener(OnCheckedChangeListener l) { }
}
