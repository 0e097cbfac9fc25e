package android.widget; public class RadioButton extends CompoundButton { public RadioButton(android.content.Context c) { super(c); } }
