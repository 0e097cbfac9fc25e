package android.widget; public abstract class CompoundButton extends Button { public CompoundButton(android.content.Context c) { super(c); } public void setChecked(boolean checked) { } }
