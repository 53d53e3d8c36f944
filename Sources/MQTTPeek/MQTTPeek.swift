// placeholder until the MQTTPeek sources land
