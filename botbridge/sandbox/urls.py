from django.urls import path

from botbridge.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("", views.chat, name="chat"),
    path("send/", views.send, name="send"),
    path("press/", views.press, name="press"),
    path("pay/", views.pay, name="pay"),
]
